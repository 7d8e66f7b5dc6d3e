"""The matching engine: how a query's candidates become verdicts, scores and edits.

A pipeline (core/hashing.py) makes the query's fingerprint, and the index returns candidates by
hash distance. From there, one module per step:

1. judge.py takes the candidates: the closest half of any query hash is the distance that
   counts, each candidate gets its tier by that distance, and its stored views are read
   (views.py; their compact form: views_codec.py).
2. alignment.py aligns the query's views (upright, mirrored) coarsely with every window of the
   first `screened` candidates' views, refines the `verified` most alike and measures what
   still differs (`Evidence`); when none passes, the most alike are turned and tried again.
3. Each candidate's target is its tier (policy.py: near, far); a record kept with a thumbnail
   (thumbnails.py) must also pass the look-alike check, a finer look at the thumbnail
   (photograph.py), which lets a far candidate pass the wider `far_looked` tier too.
4. verdicts.py turns the evidence into a verdict (duplicate, similar, different) and a match
   percentage banded by verdict; edits.py names what the query changed (cropped, rotated,
   brighter...) from how the pictures lined up, and marks.py finds text written over a copy.

policy.py holds every limit, tier and tunable above, with what chose it; arrays.py the small
array helpers the steps share. Nothing here imports an adapter: the thumbnails come through a
function the caller passes (judge.ThumbnailSource).
"""
