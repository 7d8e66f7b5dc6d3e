"""The catalog's use cases: register a picture through the duplicate gate, find, look up, delete,
decide on the report's groups, keep uploaded pictures, find similar products.

service.py is the entry: `DupcheckService` composes the use cases (lookups.py, records.py and
service.py's registration) over their shared parts (parts.py); gate.py and writer.py are a write's
way in, decisions.py, kept_images.py and products.py what goes beside the records.
"""
