// ARIA tabs (WAI-ARIA Authoring Practices, automatic activation): arrow keys, Home and End
// move between tabs; only the selected tab is in the Tab order.

/** Wires the tablist; `onSelect(name)` runs when the reader picks a tab. */
export function setUpTabs(tablist, onSelect) {
  const tabs = [...tablist.querySelectorAll('[role="tab"]')];
  tablist.addEventListener("click", (event) => {
    const tab = event.target.closest('[role="tab"]');
    if (tab) onSelect(tab.dataset.tab);
  });
  tablist.addEventListener("keydown", (event) => {
    const at = tabs.indexOf(document.activeElement);
    if (at < 0) return;
    const moves = {
      ArrowRight: (at + 1) % tabs.length,
      ArrowLeft: (at - 1 + tabs.length) % tabs.length,
      Home: 0,
      End: tabs.length - 1,
    };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const next = tabs[moves[event.key]];
    next.focus();
    onSelect(next.dataset.tab);
  });
}

/** Shows the panel of tab `name` and marks its tab selected. */
export function selectTab(tablist, name) {
  for (const tab of tablist.querySelectorAll('[role="tab"]')) {
    const selected = tab.dataset.tab === name;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    document.getElementById(tab.getAttribute("aria-controls")).hidden = !selected;
  }
}
