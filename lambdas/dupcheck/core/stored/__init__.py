"""What a record stores of its picture, and the query seen the same way: the floor that
fingerprinting (which makes them) and the matching engine (which compares them) both stand on.

views.py: the two small views every record stores, and the query's `Probe`, which makes its
views at each angle; views_codec.py: the views' compact stored form; thumbnails.py: the picture
kept beside a record (policy.KEPT_SIDE px) and its stored form.
"""
