"""The matching engine: how a query's candidates become verdicts, scores and edits.

A pipeline (core/fingerprint/hashing.py) makes the query's fingerprint and declares how its candidates are
judged (core/limits/judging.py: by distance alone, or verified); the index returns candidates by hash
distance. From there, `judge.judge_candidates`, the engine's one entry point, and one module per
step of the verified way:

1. judge.py takes the candidates: the closest half of any query hash is the distance that
   counts, each candidate gets its tier by that distance, and its stored views are read
   (core/stored/views.py; their compact form: views_codec.py).
2. alignment.py aligns the query's views (upright, mirrored) coarsely with every window of the
   first `screened` candidates' views, refines the `verified` most alike and measures what
   still differs (`Evidence`); when none passes, the query turned back by the angle its own
   borders show (a copy turned on a fill), then the most alike turned, are tried again.
3. A candidate whose views line up (core/limits/policy.py: looked_near, looked_far, by distance) is
   tested against the picture kept beside its record (core/stored/thumbnails.py) by the same-photograph test
   (photograph.py, with affine.py and one_edit.py): a duplicate shares the photograph's fine
   detail. A record kept without its picture is judged on its views alone (near, far). When
   none passes, the most alike within `close_look` bits is tested all the same.
4. verdicts.py turns the evidence into a verdict (duplicate, similar, different) and a match
   percentage banded by verdict; edits.py names what the query changed (cropped, rotated,
   brighter...) from how the pictures lined up, and marks.py finds text written over a copy.

core/limits/policy.py holds every limit, tier and tunable above, with what chose it;
core/pictures/arrays.py the small array helpers the steps share. Nothing here imports an adapter
or fingerprinting: the thumbnails come through a function the caller passes
(judge.ThumbnailSource), the query's views in the `Probe` its pipeline made (core/stored).
"""
