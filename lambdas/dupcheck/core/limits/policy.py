"""Every limit, tier and tunable of the matching engine, and what chose each one.

One place answers "where is this decided": the algorithm modules import their numbers from here
and hold none of their own. Each is grouped by the step that reads it, with what it means and
where the lab says what set it (docs/lab/evaluation.md holds the experiments and their counts,
docs/lab/benchmarks.md the timings). A change here changes answers (but TOGETHER_MAX, speed
only): measure it with `python -m dupcheck evaluate` against main before and after.

Left beside their code, as formats rather than choices: the stored views' codec steps
(views_codec.STEPS: a record names its step by index) and the thumbnail's header and the
largest side one is read at (thumbnails.py); the hashing pipelines' own sizes
(core/fingerprint/hashing.py: the working size, the query's padding, which name a fingerprint).
The small numerical guards (1e-6 against a division by zero, a Lucas-Kanade ridge) are
arithmetic, not policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from dupcheck.core.models import Verdict

# -- the same answer on every CPU (docs/architecture.md, "The same answer on every machine") ---------

# A ranking key's grid (`ranked`, below): far above what another CPU's BLAS or SIMD kernel moves a
# float32 product (a few parts in 10^7), far below any difference between two pictures' scores.
RANK_STEP = 1e-4
# An affine map's numbers are snapped to a millionth of a pixel (affine.py): far below what a
# Lucas-Kanade step resolves, far above what another CPU's float64 kernels move them.
MAP_STEP = 1e-6


def ranked(values: np.ndarray | float) -> np.ndarray:
    """`values` snapped to RANK_STEP, as int64: the key to take a best by (np.argmax, a stable
    sort, max(key=...)), so that candidates equal but for the kernel's rounding tie, and the tie
    goes to the first, on every machine."""
    return np.rint(np.asarray(values, dtype=np.float64) / RANK_STEP).astype(np.int64)


# -- stored views (views.py, views_codec.py) -------------------------------------------------------

LUMA_GRID = 32  # stored luma per view, a side
CHROMA_GRID = 16  # stored a*, b* per view: colour needs less detail than structure
VIEWS = 2  # whole picture, border-trimmed picture
# At most this many bytes of compact views: with the record's other fields (~250 bytes) a record
# stays under 1.5 KB in SQLite and DynamoDB (docs/lab/benchmarks.md, "Record size").
MAX_BYTES = 1250

# -- alignment (alignment.py) ----------------------------------------------------------------------

COARSE = 8  # side of the first, exhaustive alignment search
FINE = 24  # side at which an alignment is refined and judged
WIDTHS = (1.0, 0.9, 0.8, 0.72)  # window sides searched (a 14% crop per side keeps 72%)
OFFSET_STEP = 0.05  # between the coarse search's window starts, as a share of a side
REFINE_STEPS = (0.02, 0.01)  # then refined at FINE: neighbours this far, twice...
REFINE_MIN = 0.75  # ...when the coarse correlation is at least this (copies score 0.9 and more)
LUMA_TOLERANCE = 20.0  # luma levels (0-255) a pixel may differ, after gain and offset, and agree
COLOUR_TOLERANCE = 12.0  # CIELAB a*b* units a pixel may differ, after the saturation scale
# Luma levels from a plain background's (half that in a*b*): what is not the product, in the
# views (alignment._product) and in the look-alike check's patch (photograph._shown) alike.
BACKGROUND_TOLERANCE = 12.0
GREY_CHROMA = 4.0  # a view whose 99th-percentile chroma is below this is grayscale
PLAIN_STD = 2.0  # luma levels: a view flatter than this is a plain picture
LAYOUT_FREQUENCIES = 8  # the aligned pHash: signs of the 8x8 lowest frequencies (63 without DC)
LAYOUT_BITS = LAYOUT_FREQUENCIES * LAYOUT_FREQUENCIES - 1
MIN_SATURATION = 0.3  # the strongest desaturation a copy may have
MAX_SATURATION = 2.0  # ...and the strongest saturation
# Luma levels (query, predicted): a query pixel at or past the first whose prediction is at or
# past the second was clipped to white (black) by brightening (darkening), and does not differ.
CLIPPED_WHITE, CLIPPED_BLACK = (250, 245), (5, 10)
BRIGHTENINGS = (1.1, 1.2, 1.3, 1.4)  # brightness factors whose clipping a brighter query may show
# ...tried only where the colour can matter: a candidate less alike than this passes no views-only
# tier (the least correlation of ALIGNED_DUAL_PHASH.near, below), so its colour changes no verdict.
# (Trying every judged candidate tripled a copy's verification.)
BRIGHTENING_MIN_SIMILARITY = 0.8
# Speed only, no answer depends on it: pictures x channels whose nine shifts
# alignment._tolerant_residual takes in one pass (equal cost at 4 pictures of 2 channels).
TOGETHER_MAX = 8

# -- turning (alignment.py: verify, _Turning) ------------------------------------------------------

# When no candidate passes upright, the ROTATED_CANDIDATES most alike whose colour mostly agrees
# are turned at ROTATION_SIZE px by the angle their aligned pair says is left (`residual_turn`);
# fewer lose turned copies that are not the most alike upright (docs/lab/evaluation.md, "Turning
# less, the same verdicts for less work, naming the edits").
ROTATED_CANDIDATES = 4
ROTATION_SIZE = 80  # px: the views are 32 px, and a smaller picture is 4x cheaper to turn and trim
ROTATION_MIN_SIMILARITY = 0.2  # a copy turned with `expand` has fill corners: 0.2-0.6 upright
ROTATION_COLOUR = 0.2  # share of colour off a turned candidate may have (the fill)
ROTATION_STEPS = 3  # turns at most, each by the angle still left
ROTATION_LOSS = 0.05  # ...ended when a turn makes the pair this much less alike than the best
# ...and ended after the first turn (tried both ways) unless it made the pair this much more
# alike, passes the target, or was under PROMISE_MIN_TURN degrees: a copy gains far more on its
# first turn than a look-alike does (docs/lab/benchmarks.md, "A new product's turning").
TURN_PROMISE = 0.05
PROMISE_MIN_TURN = 1.0
MIN_STEP = 0.3  # degrees: a smaller turn left is no turn
MAX_ANGLE = 7.0  # degrees: turned no further (the benchmark's copies are turned up to 5)
# The nearest candidate's estimates (from 32 px views) can stop near 0 or point the wrong way in
# a busy scene: when they end without a line-up, it is also tried turned by each of these, once
# (a degree off lines up the views: a fifth of a pixel at 24 px; docs/lab/evaluation.md, "The
# turn tried when the estimates stop").
TURN_SCAN = (4.0, -4.0)
# A turned copy's own borders say its angle: where the fill a turn leaves meets the picture (or
# the padding or frame around it), each side is a straight line at the turn's angle. Each side's
# first off-fill pixel, row by row over the middle EDGE_ROWS of the working copy, is fitted by a
# line (robustly: the median of slopes, then least squares over the points within EDGE_FIT px);
# a side counts when EDGE_STRAIGHT of its rows lie on it (a row without fill, where the line is
# under a pixel from the edge: a small turn's wedge), and the turn when two sides agree
# within EDGE_AGREE degrees. When none passes upright, the query turned back by it is judged as
# upright (alignment.verify, views.Probe.border_turn): a product's own outline is seldom straight
# that far (docs/lab/evaluation.md, "A turn told by the picture's own borders"). Inside padding
# (Probe.inside_border) the lines are read on the query's detail picture (QUERY_DETAIL_SIDE):
# a turn of a degree leaves a fill 2-3 px wide at 160 px, which a JPEG's blur swallows.
EDGE_ROWS = (0.2, 0.8)
EDGE_MIN_ROWS = 20  # ...of a 160 px working copy: fewer rows draw no line
EDGE_FIT = 1.5
EDGE_STRAIGHT = 0.8
EDGE_AGREE = 1.0
# A turn is one more freedom of the alignment, so a turned candidate must also keep its layout
# (looser than upright: a copy turned within its frame keeps fill corners, 6-10 bits) and turn as
# one piece: the turn left in each half of the pair within TURN_SPREAD degrees of the others
# (another picture in the same pose lines up by a turn too, its parts disagreeing).
TURNED_MAX_LAYOUT = 10
TURN_SPREAD = 4.0
TURN_GAIN = 0.01  # ...and line up better than upright by this (a look-alike gains next to nothing)

# -- the same-photograph test (photograph.py, affine.py, one_edit.py) -------------------------------
# Chosen on the dev part of the benchmark, never on the lockbox (docs/lab/evaluation.md, "The same
# photograph"; docs/lab/lockbox-split.json).

WORK_SIDE = 160  # px, the longest side of the working copy the hashes and views are made from
KEPT_SIDE = 384  # px, the longest side of the picture kept beside a record (thumbnails.py)
KEPT_QUALITY = 85  # JPEG: a kept picture's size (docs/lab/benchmarks.md)
QUERY_DETAIL_SIDE = 768  # px: the query kept at up to this size for the test (two compared sides)
# The aligned patch whose fine detail is compared: at 256 px a garment's folds, hair and texture
# are resolved; at 128 px other photographs in the same pose still share most of it
# (docs/lab/evaluation.md, "The same photograph").
COMPARE_SIDE = 256
MIN_COMPARED = 48  # px: a smaller patch (a thumbnail's cut) cannot be compared
# Lucas-Kanade from the views' window, coarse to fine: Gauss-Newton steps at each side (64 starts
# from the window; 128 and COMPARE_SIDE refine the map found below them), after a Gaussian blur of
# AFFINE_BLUR px, which smooths the last pixel of aliasing the steps would chase
# (docs/lab/evaluation.md, "The same photograph").
AFFINE_STEPS = {64: 12, 128: 6, 256: 2}
AFFINE_BLUR = 0.5
AFFINE_CHOICE = 4  # of the 64 px steps, taken from every start: the best one then takes the rest
# How alike a map leaves the two patches (which start is refined, whether a step helped): the
# median correlation of LIKENESS_TILE px tiles where the kept picture varies by LIKENESS_VARIES
# levels or more. One correlation over the patch lets a big badge or frame, added on top, outweigh
# the photograph (the steps then turn the map to fit the badge); a median over tiles does not
# (docs/lab/evaluation.md, "An overlay does not outweigh the photograph").
LIKENESS_TILE = 8
LIKENESS_VARIES = 2.0
MIN_LIKENESS_TILES = 8  # a median of fewer says less than one correlation over the whole patch
# The detail is first compared at EARLY_SIDE px, then at each finer side: below EARLY_ANOTHER at
# any of them, a pair is another photograph without the finer looks (a copy keeps its coarser
# detail at least as well as its finest; docs/lab/evaluation.md, "A tie between the views, and
# the detail told at 64 px").
EARLY_SIDE = 64
EARLY_ANOTHER = 0.5
# The fine detail: the difference of two Gaussian blurs (sigmas in px at the compared side), what
# only the same photograph shares in place (fabric, hair, noise, the exact outline); broader
# structure (a silhouette, a pose) is what another photograph of the same scene shares too.
DETAIL_BAND = (0.6, 1.5)
DETAIL_TILE = 16  # px per side of a tile whose detail is correlated (8 below 128 px)
DETAIL = 0.5  # luma levels: the band's std in a tile of the kept picture with detail in it
# A tile where the query has this many times the typical (median) ratio of its detail to the kept
# picture's has something added on top (text, a badge's edge): not judged. So has a region the
# kept picture shows plain (DETAIL) where the query has this many times that (one_edit.py).
ADDED_DETAIL = 2.5
# The same photograph: the median correlation of the detailed tiles' fine detail, between what
# copies keep and what other photographs whose views line up reach (docs/lab/evaluation.md, "The
# same photograph").
SAME_PHOTOGRAPH = 0.6
MIN_DETAIL_TILES = 8  # fewer detailed tiles: too little to tell photographs apart; the views decide
SHARED_TILE = 0.5  # a region whose detail correlates this much is the photograph's, recoloured
# One edit of the whole picture (one_edit.py): its colours compared at COLOUR_SIDE px (JPEG keeps
# colour at half resolution), each pixel allowed TONE_SLACK luma levels and TINT_SLACK levels of
# tint off one luma line and one tint factor, CLIP_SLACK more where the edit clips a channel.
COLOUR_SIDE = 64
# ...in cells that span at least CHROMA_SAMPLES of the query's own JPEG colour samples each way (one
# for 2 x 2 of its pixels) where the query holds at most half the kept picture's pixels: a
# thumbnail's stripes and small colours mix otherwise than the kept picture's resize mixes them
# (docs/lab/evaluation.md, "A thumbnail's colours over its own colour samples").
CHROMA_SAMPLES = 2
TONE_SLACK = 10.0
TINT_SLACK = 8.0
CLIP_SLACK = 10.0
TONE_QUANTILES = (5, 95, 19)  # the luma line is fitted to these quantiles (from, to, count): robust to what differs
STRONG_TINT = 8.0  # levels of tint a channel needs for its ratio to the kept picture's to say anything
MIN_FITTED = 30  # samples a fit needs (fewer: the fit before it stands)
CLIPPED = 12  # levels from 0 or 255: a channel that a fit leaves out (a clip truncates it)
SOLID = 6  # of a differing pixel's 3x3 neighbourhood that must differ too: a region, not an edge
MIN_REGION = 0.002  # of the overlap: a smaller differing region is JPEG or an edge's last pixel
# A region's outline: where the colour gradient (a grey edge's luma step) is EDGE levels per
# pixel at COLOUR_SIDE; it is the photograph's where the catalog picture has an edge in the same
# cell and direction (OUTLINE_TURN degrees), and the query's own, something added, when more
# than NEW_OUTLINE of it is not (a majority, not tuned: docs/lab/evaluation.md, "A region's
# outline, in place and direction").
EDGE = 10.0
OUTLINE_TURN = 30.0
NEW_OUTLINE = 0.5
# The subject a recolour is a share of: the overlap less a plain backdrop, the cells within
# BACKDROP levels of the colour that BACKDROP_RING of the overlap's outer ring has; at least
# MIN_SUBJECT of the overlap.
BACKDROP = 12.0
BACKDROP_RING = 0.6
MIN_SUBJECT = 0.05
MIN_JUDGED = 64  # px at the compared side: a smaller region is too small to say what is inside it
# Another colour: regions covering this much of the subject that one edit does not explain and
# that keep the photograph's detail (or, plain, its outline); above what edited copies reach
# (docs/lab/evaluation.md, "Colour variants: a tint no one edit explains").
RECOLOURED = 0.025
# A faint recolour (a part's tint scaled, not replaced: green stripes faded towards grey) stays
# within TINT_SLACK of one edit. A saturation edit scales every tint by one factor, skin's too, so
# a region whose cells' tint moved by FAINT_TINT of itself (and a level), and whose tint ratio to
# the kept picture's lies FAINT_RATIO and FAINT_SIGMAS of the skin's own spread from the skin's,
# is in another colour too. The tint moved is measured against the skin's own factor when that
# lies FAINT_RATIO from the fitted one (the fit followed a product that is most of what is
# tinted). Only where both pictures' encodings kept their colours: the query a
# JPEG whose chroma step (for a block's mean) is at most FINE_CHROMA_STEP (quality 75 and up on
# the usual tables), the catalog picture not made from a coarser one; at quality 15-25 (steps
# 34-57) a copy's weak tints move as much as a fade (docs/lab/evaluation.md, "Faint recolours
# told by the skin").
FAINT_TINT = 0.15
FAINT_FLOOR = 1.0  # level: a cell's rounding
FAINT_RATIO = 0.25
FAINT_SIGMAS = 3.0
# One edit turns no tint: a faint region whose tints (tinted in both pictures) turned by more than
# FAINT_TURN degrees (the median) is another colour, skin or none (docs/lab/evaluation.md, "Faint
# recolours: the skin's factor, and a tint turned").
FAINT_TURN = 20.0
FINE_CHROMA_STEP = 10

# -- edits (edits.py): the smallest changes docs/lab/evaluation.md, "Naming the edits", tells from noise

MIN_SIDE = 0.02  # a side cropped by less than this is not named
MIN_BORDER = 0.03  # padding: the border share of the query, per side
MIN_ROTATED = 1.5  # degrees; below, a copy that lined up upright is not called rotated (the views' turn)
# ...and the same-photograph test's turn, measured at 256 px, which reads a copy's turn to a
# quarter of a degree (docs/lab/evaluation.md, "Grey copies and small turns named").
MIN_TURN_TESTED = 0.5
MIN_GAIN = 0.08  # brightness or contrast: the luma line's slope off 1 by at least this
# Colour scale relative to the luma slope outside this: saturation, past what copies without a
# saturation edit read (docs/lab/evaluation.md, "Turning less, the same verdicts for less work,
# naming the edits").
SATURATION_EDIT = (0.8, 1.2)
COLOURED = 8.0  # a*b* units: chroma that is colour, not grey's noise (edits._tone: where, how much of it)
# Saturation is measured over the catalog picture's coloured pixels, when they are at least this
# share of the aligned window (a few of the views' pixels; docs/lab/evaluation.md, "The tone
# line where the test compared").
SATURATION_COLOURED = 0.01
OVERLAY_SHARE = 0.008  # share of the aligned picture that differs in one patch: text or a badge
OVERLAY_DENSITY = 0.5  # ...and those pixels fill at least this much of the patch's box
MARK_EXTENT = 1 / 3  # share of a side a badge or a logo spans at most, each way: more is a subject or a border
# A photo pasted on padding (views.Probe.pasted): each of its four sides is a line of the photo,
# mostly off the padding's colour; a badge overhanging it onto the padding is one run a line,
# MARK_EXTENT of the line at most. A majority, not tuned (docs/lab/evaluation.md, "A photo pasted
# on padding, a badge overhanging it").
PASTED_SIDE = 0.5
# Text or a watermark (marks.py): a pixel is written where, after a local edit of the kept
# picture is fitted to each MARK_TILE px tile and what is left smoothed by MARK_SMOOTHING px,
# it is off by more than MARK_LEVEL luma levels and MARK_NOISE times the pair's own spread, plus
# MARK_GRADIENT times the kept picture's strongest gradient there; at least MARK_EDGE px from
# the overlap's edge. A mark is a group of written pixels whose MARK_BLOCK px blocks touch, or
# lie on one row at most MARK_GAP blocks apart (a faint word is found in pieces, a letter's
# spacing apart), at least MARK_LINE px across both ways (thinner, it is a line: a seam or an
# edge's highlight; the benchmark's smallest text is 15 px high), over MARK_SHARE of the patch.
# All sizes at 256 px (docs/lab/evaluation.md, "Watermarks: what a local edit cannot explain";
# "Text on the backdrop, and a word in pieces").
MARK_TILE = 16
MARK_REFIT = 2.5  # the tile's second fit leaves out pixels this many times its typical miss: strokes
MARK_SMOOTHING = 1.2
MARK_LEVEL = 4.0
MARK_NOISE = 4.0
MARK_GRADIENT = 0.5
MARK_EDGE = 12
MARK_BLOCK = 4
MARK_GAP = 2
MARK_LINE = 8
MARK_SHARE = 0.002
# A smaller mark is named when it reads as a line of text: a row WORD_ROW times as long as it is
# high (four letters or more) that holds WORD_ALONE of what was written anywhere in the patch: a
# tone edit's clipped highlights are written in scattered groups over the bright parts, a word
# is one group on a picture otherwise clean (docs/lab/evaluation.md, "A small word named by its
# shape").
WORD_ROW = 3.0
WORD_ALONE = 0.5
# Which of two kept pictures holds a mark (marks.mark_holder): the pixels that differ by more than
# HOLDER_LEVEL in a colour channel after a 1 px blur, HOLDER_PIXELS of them at least; the log of
# the two pictures' gradient energy on an outline HOLDER_OUTLINE px wide round them, beyond
# HOLDER_MARGIN either way (docs/lab/evaluation.md, "Which picture holds the mark").
HOLDER_LEVEL = 12.0
HOLDER_PIXELS = 20
HOLDER_OUTLINE = 2
HOLDER_MARGIN = 0.3
# Whether a mark lies on the product (marks.on_product), at the test's 256 px: its body is where
# the pair differs by PRODUCT_MARK_LEVEL levels off their tone line (with the written pixels),
# PRODUCT_MARK_PIXELS of them at least; it lies on the product when, grown by PRODUCT_MARGIN px,
# it touches neither the plain backdrop (the kept picture's BACKDROP levels of its ring's colour,
# connected to the ring, over PRODUCT_BACKDROP of the overlap) nor the overlap's edge. Without a
# backdrop nothing says where the product ends: undecided. PRODUCT_MARK_PIXELS is about a 9 px
# square: a print or a badge is a region, what resampling or a tone change leaves is not
# (docs/lab/evaluation.md, "Marks on the product").
PRODUCT_MARK_LEVEL = 40.0
PRODUCT_MARK_PIXELS = 80
PRODUCT_MARGIN = 4
PRODUCT_BACKDROP = 0.05
# Text that replaced text (marks.replaced_text), on two kept pictures lined up pixel for pixel:
# the pixels whose colours lie SWAP_CONTRAST apart (RGB distance: a stroke on its ground), their
# colours in steps of SWAP_STEP levels, counted in tiles of SWAP_TILE px; replaced where SWAPPED
# of those colour pairs come both ways round in their tile (docs/lab/evaluation.md, "Marks on
# the product").
SWAP_CONTRAST = 60.0
SWAP_STEP = 48
SWAP_TILE = 16
SWAPPED = 0.15
# Two kept pictures line up (marks.lined_up) where, in every LINE_TILE px tile they share
# along an axis (detail across it, LINE_DETAIL levels from a neighbour, root mean square; a
# difference under 1/LINE_SHARED of a pixel's shift of its own), they lie under SWAP_CONTRAST
# / 255 of a pixel apart, but for LINE_ASTRAY of them (a title's soft edge: docs/lab/evaluation.md,
# "Marks on the product"); LINE_TILES such tiles along each axis at least, else nothing tells.
LINE_ASTRAY = 0.15
LINE_TILE = 32
LINE_DETAIL = 4.0
LINE_SHARED = 4
LINE_TILES = 4
# Two kept pictures judged different are read as two covers of one template (edits.retitled)
# where they differ (SWAP_CONTRAST apart) in under RETITLED_SHARE of the picture, and their whole
# views in under that share of cells: a title's ink covers a few hundredths of a cover, two
# photographs differ across most of it. Set with room to spare, not tuned (docs/lab/evaluation.md,
# "Another title on a flat cover").
RETITLED_SHARE = 0.15
# With fewer such tiles, the text tells (marks._strokes_moved): in each MOVED_TILE px tile with
# MOVED_PIXELS that differ, the pixels out of the other picture's range over a pixel round them
# (MOVED_LEVEL levels of JPEG's noise either way) at the tile's best shift up to MOVED_REACH px
# (a padding just short of MIN_SIDE moves a title's strokes that far at 256 px); the same strokes
# moved where under MOVED of them are, either way round (docs/lab/evaluation.md, "Another title
# on a flat cover").
MOVED_TILE = 32
MOVED_PIXELS = 8
MOVED_REACH = 3
MOVED_LEVEL = 24.0
MOVED = 0.07
# A patch on the query's uniform border is added when this much of it lies where the catalog
# picture is plain too (or beyond it); less, and the catalog picture has it: the photograph's.
# Set once, not tuned: a badge there lies wholly on plain backdrop, so any high share tells.
BORDER_PLAIN = 0.9
# Luma levels a catalog picture's tone line is fitted between (a plain background would take most
# quantiles, and what brightening pushes past them is on no line).
TONE_DARK, TONE_BRIGHT = 8, 247
BOX_SEARCH = np.arange(-8, 9) / 128  # a trimmed view's box edges, refined this far (of a side)
BOX_MIN_WIDTH = 0.2  # ...to a window at least this share of a side
# The tone line through matching quantiles: of the query's luma, those pushed past these levels
# are left out (half clipped); fewer pixels, a narrower range of levels, or quantiles closer
# than this in the catalog picture leave no line (1, 0).
TONE_LINE_KEPT = (12, 235)
TONE_LINE_MIN_PIXELS = 32
TONE_LINE_MIN_RANGE = 30.0
TONE_LINE_MIN_APART = 4.0
# Where the same-photograph test compared a copy, its tone line is fitted there, both patches
# first averaged over blocks of this many px at 256 (their sharpness differs with where each was
# resampled from; docs/lab/evaluation.md, "The tone line where the test compared").
TONE_BLOCK = 4

# -- verdicts and match percentages (verdicts.py; docs/lab/evaluation.md, "Verdicts, match percentages
# and edits") ---------------------------------------------------------------------------------------

# [low, high) of the match percentage for each verdict (a duplicate can score 100).
BANDS: dict[Verdict, tuple[float, float]] = {
    Verdict.DUPLICATE: (90.0, 100.0),
    Verdict.SIMILAR: (60.0, 90.0),
    Verdict.DIFFERENT: (0.0, 60.0),
}
TOP = 0.1  # a band's score stays this far below the next one: one decimal never reaches it
# Of the views' disagreement in a duplicate's score where the kept pictures were compared: what
# the finer look finds differing orders one photograph's records (the views, 32 px, blur a mark
# into another record's print at the same place); the views still show a crop or a turn's lost
# corners (docs/lab/evaluation.md, "Which record of a photograph comes first").
VIEWS_IN_DUPLICATE = 0.1
HASH_WEIGHT = 0.5  # of the hashes' closeness in the likeness of pictures that are not the same

# The baseline pipeline, PHash64 (core/fingerprint/hashing.py), decides on hash distance alone: <= 4 keeps
# distinct pictures out (0%) but calls 68% of colour variants duplicates; <= 10 (a common choice)
# calls 14% of distinct ones (docs/lab/evaluation.md, "Results").
PHASH_DUPLICATE_MAX = 4
PHASH_SIMILAR_MAX = 12


# -- what a tier and the look-alike check's limits test ---------------------------------------------


class Measured(Protocol):
    """What a tier reads of a candidate's evidence (alignment.Evidence says what each means)."""

    @property
    def similarity(self) -> float: ...
    @property
    def luma_off(self) -> float: ...
    @property
    def colour_off(self) -> float: ...
    @property
    def layout_off(self) -> int: ...
    @property
    def colour_seen(self) -> bool: ...
    @property
    def colour_missing(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When evidence says "the same picture"."""

    min_similarity: float
    max_luma_off: float
    max_colour_off: float
    max_layout_off: int = LAYOUT_BITS
    needs_colour: bool = False  # only when colour could be compared
    max_colour_missing: float = 1.0

    def passes(self, evidence: Measured) -> bool:
        return (
            evidence.similarity >= self.min_similarity
            and evidence.luma_off <= self.max_luma_off
            and evidence.colour_off <= self.max_colour_off
            and evidence.layout_off <= self.max_layout_off
            and evidence.colour_missing <= self.max_colour_missing
            and (evidence.colour_seen or not self.needs_colour)
        )

    def open_on_colour(self, evidence: Measured) -> bool:
        """Whether `evidence` meets every threshold but colour's (colour off, colour missing):
        whether its colour can decide a pass."""
        return (
            evidence.similarity >= self.min_similarity
            and evidence.luma_off <= self.max_luma_off
            and evidence.layout_off <= self.max_layout_off
            and (evidence.colour_seen or not self.needs_colour)
        )


@dataclass(frozen=True, slots=True)
class Tier:
    """Evidence passes a tier when it meets any of its thresholds."""

    options: tuple[Thresholds, ...]

    def __init__(self, *options: Thresholds) -> None:
        object.__setattr__(self, "options", options)

    def passes(self, evidence: Measured) -> bool:
        return any(option.passes(evidence) for option in self.options)

    def open_on_colour(self, evidence: Measured) -> bool:
        return any(option.open_on_colour(evidence) for option in self.options)

    @property
    def max_colour_off(self) -> float:
        return max(option.max_colour_off for option in self.options)

    @property
    def judges_detail(self) -> bool:
        return False  # the views alone

    @property
    def found_photograph(self) -> bool:
        return False


# -- the tiers of AlignedDualPHash (judge.py) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Policy:
    """How a pipeline judges its candidates (judge.py): how many are aligned and verified, which
    are looked at for the same photograph, and, for a record kept without its picture, what its
    views alone must pass."""

    screened: int  # the first candidates by index distance...
    by_part: int  # ...and the first others by the whole-picture half's, all aligned coarsely (cheap)...
    verified: int  # ...and the most alike of them, judged (and the nearest by hash: alignment.verify)
    close_distance: int  # index distance (of the 128 bits searched) up to which a candidate is near
    # The views line up well enough that the same-photograph test is worth its cost: its luma
    # structure, never its colour (whether the colour changed is the test's to say).
    looked_near: Tier
    looked_far: Tier
    # A record whose picture was not kept beside it (dualphash128-v3, v2) is a duplicate on its
    # views alone when they pass these, as before the test: reindex gives it its picture.
    near: Tier
    far: Tier
    # When no candidate passes, the most alike within this many bits (the judged distance: the
    # closest half, of 64) is tested anyway (judge.py, `_closely`): its views may have missed the
    # tiers as a copy's do past what they line up.
    close_look: int
    # The other way round (judge.py, `_both_ways`: the candidate as the query, the query as the
    # catalog picture), what the views must pass to be looked at: every candidate of a query is
    # screened so, where the other way screens its first `verified`.
    looked_back: Tier
    # ...or, for a candidate that lines up with a part of the query better than the query's own
    # screening lined it up (by PART_GAIN), this: what a crop of the query passes.
    looked_part: Tier
    verified_back: int  # the candidates most alike the other way round at the coarse alignment, judged so

    def looked(self, distance: int) -> Tier:
        """What the views of a candidate at this hash distance must pass to be looked at."""
        return self.looked_near if distance <= self.close_distance else self.looked_far

    def tier(self, distance: int) -> Tier:
        """What the views alone of a record kept without its picture must pass."""
        return self.near if distance <= self.close_distance else self.far


ALIGNED_DUAL_PHASH = Policy(
    # Judging the 12 most alike of the first 32 calls as many copies duplicates as judging all 32,
    # for less time.
    screened=32,
    # The 8 nearest on the whole-picture half (core/fingerprint/hashing.py, `part_hashes`): copies a
    # changed border moved far on one half (docs/lab/evaluation.md, "Candidates by one half").
    by_part=8,
    verified=12,
    close_distance=16,
    # Close hashes: the aligned pictures agree (a copy's correlation is 0.9 and more). Far hashes
    # (big crops, turns): agree almost everywhere, or are more alike still with the same layout
    # (docs/lab/evaluation.md, "The same photograph").
    looked_near=Tier(Thresholds(min_similarity=0.8, max_luma_off=0.08, max_colour_off=1.0)),
    looked_far=Tier(
        Thresholds(min_similarity=0.85, max_luma_off=0.01, max_colour_off=1.0),
        Thresholds(min_similarity=0.94, max_luma_off=0.08, max_colour_off=1.0, max_layout_off=10),
    ),
    # The views-only tiers of dualphash128-v3 (docs/lab/evaluation.md): colour must agree
    # too, and a grayscale query cannot show that a black shirt is not its red twin.
    near=Tier(Thresholds(min_similarity=0.8, max_luma_off=0.08, max_colour_off=0.02, max_colour_missing=0.003)),
    far=Tier(
        Thresholds(min_similarity=0.85, max_luma_off=0.01, max_colour_off=0.01),
        Thresholds(min_similarity=0.95, max_luma_off=0.08, max_colour_off=0.01, max_layout_off=6, needs_colour=True),
    ),
    # Copies whose views missed the tiers lie a few bits from their photograph, a new product's
    # first candidate seldom within 4 (docs/lab/evaluation.md, "A close look when nothing passes").
    close_look=4,
    # looked_far's: a catalog picture that is a part of the query lines up as a copy does, where
    # looked_near lets through many times a new product's candidates (docs/lab/evaluation.md,
    # "Both ways").
    looked_back=Tier(
        Thresholds(min_similarity=0.85, max_luma_off=0.01, max_colour_off=1.0),
        Thresholds(min_similarity=0.94, max_luma_off=0.08, max_colour_off=1.0, max_layout_off=10),
    ),
    # What the large crops the strict tier misses screen back at (docs/lab/evaluation.md, "Both
    # ways").
    looked_part=Tier(Thresholds(min_similarity=0.86, max_luma_off=0.03, max_colour_off=1.0, max_layout_off=10)),
    # A catalog holding a photograph three times has each of its other records among the first.
    verified_back=4,
)
# A candidate whose views differ in one block and pass `looked` without it is looked at too
# (pasted.py; docs/evaluation.md, "Another print on one mockup"): the block at most this share of
# the view (a caption band, a sticker, not a subject)...
PASTED_BLOCK = 0.4
# ...and a strip: at most this share of the view's side across its narrower side. A band or a
# sticker is; another garment in the same pose, which differs in one region too, is as deep as
# it is wide, and a look at it would only slow a new product's check.
PASTED_STRIP = 0.25
# ...holding at least this share of the pixels that differ (a majority: the rest, resampled edges).
PASTED_ALONE = 0.75
# A block is one though it differs in pieces up to 2 PASTED_GAP px apart: a band over a flat
# cover matches what it covers here and there, a see-through one the print it crosses.
PASTED_GAP = 2
# The block's own pull on the views' luma fit undone in this many rounds of refitting without it.
PASTED_ROUNDS = 3
# The other way round is looked at where the candidate lines up with less than this share of a
# side of the query's view (it shows less of the photograph), or where the test found its
# photograph without a duplicate.
WHOLE_WINDOW = 0.97
# Two copies of one photograph that each lost another side (judge.py, `_shared_part`): the query
# is tried without this share of one side, against the PART_CANDIDATES candidates most alike
# either way whose views correlate at least PART_ALIKE, where no way found a duplicate; looked at
# where the part lines up better than the whole by PART_GAIN (docs/lab/evaluation.md, "Both
# ways").
PART_SHARE = 0.2
PART_CANDIDATES = 1
PART_ALIKE = 0.6
PART_GAIN = 0.02
