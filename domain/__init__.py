"""The floor of the house: pure rules and vocabularies, no I/O and no framework.

Everything above (``db``, ``resolvers``, ``graphql_schema``, ``app``) may import from here;
nothing here imports from them (``tests/test_layers.py`` keeps it so).
"""
