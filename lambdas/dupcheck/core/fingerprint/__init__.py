"""Making fingerprints: a decoded picture hashed by a pipeline (hashing.py) into the hashes, views
and thumbnail a record stores and a query searches with, and how its candidates are judged.
"""
