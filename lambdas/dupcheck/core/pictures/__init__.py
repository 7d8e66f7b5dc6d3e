"""Pictures: untrusted bytes decoded and normalised within a memory budget, and the pixel steps
(luma, DCT, border trimming, CIELAB) that fingerprinting and the matching engine share.

imaging.py decodes (budget.py admits its memory); pixels.py works on the decoded copy; arrays.py
holds the small array helpers (medians, window sums, samplers) the rooms above share.
"""
