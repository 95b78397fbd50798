"""creditlens: where do our API credits go?"""
