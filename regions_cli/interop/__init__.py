"""Other frameworks' files, to and from our workflow format.

`original/` reads and writes the original Regions framework's JSON files (``regions import`` and
``regions export``). Pure data conversion: no CLI, no engine.
"""
