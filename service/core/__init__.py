"""The decision core: plain records in, decisions out. No I/O, no ZenML imports.

Everything here is a pure function of its arguments, so every policy is a fast unit test.
"""
