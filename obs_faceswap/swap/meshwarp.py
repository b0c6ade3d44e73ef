"""The default swapper: a face from one photo, rendered through the mesh's UV space.

No neural generator. The source photo is unwrapped once into a texture in the UV space of
MediaPipe's canonical face model (``canonical_face_model.obj``); every frame that texture is
rendered onto the live 468-point mesh, triangle by triangle, far to near with back-face
handling (:mod:`obs_faceswap.swap.raster`). The texture is pose-independent: what the photo
could not see well (the far cheek of a turned head) is taken from the mirrored side.

What the first, naive trial (a 2D Delaunay warp) got wrong and how it is avoided here:

* the source's fringe pasted over the forehead → texels unlike the source's own skin
  (robust L*a*b* models of cheeks and glabella) that connect to the texture's edge are hair
  or background; they are taken from the mirrored side when that is clean, otherwise painted
  over with the surrounding skin (a cut would let the live brows and forehead show through),
  and the forehead fades out towards the mesh's top edge;
* a pink face on a darker neck → per track, the texture (not the frame) is colour-transferred
  in L*a*b* to the live face: a global map (``rct``/``linear``) between the cheeks of both
  faces, then a smooth UV-space field of local skin-mean differences, so the live lighting
  (a lit forehead, a shaded side) carries over while the source's features stay its own;
* a closed source mouth stretched over an open one with a dark ring → with ``keep_mouth`` the
  18 triangles that close the mouth are not drawn and the live inner-lip polygon is cut out
  with a margin and a soft edge, so the real mouth interior shows; the live lips that the
  margin shows take the source's lip colour (a target's lipstick showed on every source);
* smeared, streaky texture where the poses differ → the mesh's real topology and UVs, culling,
  the mirrored fill, and oblique slivers of the photo painted over;
* a dark rim → the mask is eroded by the feather's full reach and uncovered crop pixels
  carry the frame.

The swapper only produces a :class:`~obs_faceswap.types.SwapResult` (crop, mask and a
translation to the crop's place); :mod:`obs_faceswap.merge` pastes it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt
from numba import njit

from obs_faceswap import merge
from obs_faceswap.config import ColorConfig, MaskConfig, ShapeConfig, SwapperConfig
from obs_faceswap.cvtyped import above, f32, u8, zero
from obs_faceswap.errors import InputError
from obs_faceswap.frame import clip_box
from obs_faceswap.geometry import CanonicalFace, similarity
from obs_faceswap.landmark_indices import (
    FACE_OVAL,
    LEFT_CHEEK,
    LEFT_EYE,
    LEFT_EYEBROW,
    LIPS_INNER,
    LIPS_OUTER,
    NOSE_TIP,
    RIGHT_CHEEK,
    RIGHT_EYE,
    RIGHT_EYEBROW,
    five_points,
)
from obs_faceswap.merge import LabStats, from_lab, medians, robust_lab_stats, to_lab, transfer_matrix
from obs_faceswap.swap import raster
from obs_faceswap.swap.blink import OPEN_SHARE, EyeBaseline, close_lids, closing_share, eye_openness
from obs_faceswap.swap.glasses import Glasses, find_glasses, glasses_layout, lens_areas
from obs_faceswap.swap.protocol import SourceFace
from obs_faceswap.types import Box, Face, FloatArray, ImageBGR, Mask, SwapResult

log = logging.getLogger(__name__)


# Source-side quality of a triangle from its facing ratio (projected area / true area, i.e.
# the cosine between its normal and the view direction): useless below _FACING_LO, fully
# trusted above _FACING_HI; the mirrored triangle fills in between.
_FACING_LO = 0.25
_FACING_HI = 0.55
# Texels seen this obliquely from both sides (facing below _VISIBLE_LO) are painted over: they are
# smears of a few source pixels, and stretch into streaks when the live head turns.
_LIVE_FACING_LO = 0.1
_LIVE_FACING_HI = 0.3
_VISIBLE_LO = 0.08
_VISIBLE_HI = 0.22
# Hair trim: a texel further than this from the skin models (robust standard deviations,
# see _skin_distance) is "not skin".
_SKIN_DISTANCE = 3.0
# Floors of the skin models' standard deviations (L, a, b): skin patches are very uniform.
_SKIN_MIN_STD = np.array([6.0, 2.5, 2.5], np.float32)
# Live skin vs what covers it: a texel much darker than the skin (this many robust
# deviations, floored at _LIVE_MIN_STD) AND much greyer (chroma below this share of the
# skin's) is a beard, a glasses frame or dark hair; a shaded or coloured-lit side of the face
# is darker but keeps its chroma.
_LIVE_DARKER = 3.0
_LIVE_MIN_STD = 6.0
_LIVE_CHROMA = 0.6
_SKIN_PATCHES_CHEEKS = (RIGHT_CHEEK, LEFT_CHEEK)
# Between the brows and down the nose bridge: skin that hair almost never covers.
_SKIN_PATCHES_GLABELLA = ((9, 336, 285, 417, 168, 193, 55, 107),)
# The nose's ridge: never bearded, rarely under hair (glasses cross it only at the top).
_SKIN_PATCH_NOSE = (168, 6, 197, 195, 5, 4, 45, 275, 220, 440, 122, 351)
# The inner face, where dark or unusual colours are features, not hair.
_FEATURES = RIGHT_EYEBROW + LEFT_EYEBROW + RIGHT_EYE + LEFT_EYE + LIPS_OUTER
# Nostrils and the shadow under the nose: not skin for shading statistics.
_NOSTRILS = (
    2,
    19,
    20,
    59,
    60,
    75,
    79,
    94,
    125,
    141,
    166,
    218,
    219,
    235,
    237,
    238,
    239,
    241,
    242,
    250,
    289,
    290,
    305,
    309,
    354,
    370,
    392,
    438,
    439,
    455,
    457,
    458,
    459,
    461,
    462,
)
# Source occluders inside the face: thinner than this (fraction of the texture size) and
# darker than their surroundings by this much (L*) - glasses frames, strands of hair.
_OCCLUDER_WIDTH = 0.05
_OCCLUDER_DARK = 14.0
_OCCLUDER_LENGTH = 0.15
# Glasses: this share of the nose bridge's texels is a thin dark bar.
_BRIDGE = (193, 168, 417, 351, 6, 122)
_GLASSES_BRIDGE = 0.15
# Margin around eyes, brows and lips (fraction of the texture size) where that test is off.
_PART_MARGIN = 0.02
#: Below the nose, dark texture this close to the lips (fraction of the texture size) marks a
#: beard, which the hair trim keeps.
_BEARD_REACH = 0.04
# Width of the fade towards the upper face's edge, as a fraction of the texture size.
_TOP_FADE = 0.1
# The live mask is built at this face width (pixels) and upsampled: the edges are soft anyway.
_MASK_WIDTH = 96
# keep_mouth's hole: the live inner-lip contour grown by _MOUTH_GROW, fading over the next
# _MOUTH_SOFT (fractions of the face width). It takes in most of the live lips, blended into the
# source's: the live opening is shown exactly (the mask inside the live contour is at most 0.004
# on every frame of dfl_Obama_speaking.mp4). Tighter (0.005, 0.01) the source's lips replace the
# live ones: with dicaprio_1 that removes the source's lip border showing above the live upper lip
# (a second upper lip), but with johansson_1 it draws her lipstick's edge as a red outline around
# the open mouth, and that outline moving with speech adds 0.04 to test_flicker's cut clip.
_MOUTH_GROW = 0.01
_MOUTH_SOFT = 0.03
# ... and the live lips that show there take the source's lip colour. Without it a target's
# lipstick showed on every source (the live lips are most of what the hole shows), and a
# streamer's own lip colour on the swapped face. The map: the rendered source lips' median
# L*a*b* minus the live lips' (each over its own ring between the outer and inner contours),
# guarded (no a*/b* below both the live pixel's and the source lips' 5th percentile, floored at
# 0: a blue lip line; no L* above both the live pixel's and the source lips' 95th percentile: a
# highlight pushed past white loses its red) and fitted as one affine BGR map over the live
# lips' pixels; it is measured every _LIP_EVERY frames and moves at _LIP_RATE per measurement
# (rings under _LIP_MIN_PIXELS pixels are not measured). Per frame it recolours, at full size,
# what looks like lip in the live pixels (worked out at most _LIP_WIDTH pixels across the lips
# and upsampled: 3-4 ms a frame at full size on a close face): chroma from _LIP_CHROMA[0] to
# [1] of the live lips' (from [1] on past the contour, where skin is), L* no more than
# _LIP_DARK below theirs (the dark mouth interior) nor _LIP_BRIGHT above (teeth, whose slight
# chroma took a yellow tint from a pale source's lips on johansson_2.jpg), fading over 10.
_LIP_CHROMA = (0.35, 0.7)
_LIP_DARK = 30.0
_LIP_BRIGHT = 12.0
# The opening (the live inner-lip contour shrunk by this fraction of the face width) is never
# recoloured; the rim stays in play: a closed mouth's contour is a sliver of lip that otherwise
# showed as a line of the live lipstick between the source's lips.
_LIP_OPENING_MARGIN = 0.01
# Pixels this far outside the live lips' contour (at full size) are recoloured when they look
# like lip: lipstick reaches past the mesh's contour.
_LIP_BORDER = 2
_LIP_EVERY = 5
_LIP_RATE = 0.4
_LIP_MIN_PIXELS = 24
_LIP_WIDTH = 64
_LIPS_OUTER_IDX = np.asarray(LIPS_OUTER)
_LIPS_INNER_IDX = np.asarray(LIPS_INNER)
# The texture is sampled from the level of its Gaussian pyramid (a mipmap) at which a texel is
# 1-2 output pixels, at most this deep. Sampled at full size, a 512² texture drawn onto a
# ~150-200 pixel face is minified 2.5-3.5x with bilinear taps: its fine detail aliases and
# shimmers as the face moves by sub-pixel steps. On test_flicker's cut clip (johansson_1) that
# was most of the excess over the live face's own frame-to-frame change: 1.21x -> 0.95x.
_MIP_LEVELS = 3
# Local shading transfer: both faces are compared in UV space at this resolution, and the
# difference of their skin's local means (Gaussian of this sigma, fraction of the UV size) is
# added to the texture. This carries the live lighting (a darker side, a lit cheek) that one
# global colour map cannot, while the source's features stay its own.
# Outside the inner face the field is a lighting model fitted to the live skin, not a blur of
# it: a second-order spherical-harmonics function of the live surface normal (from the mesh's
# 3D points) plus a linear ramp across the face, plus the fit's residual blurred at
# _SHADING_SIGMA. Lighting is a smooth function of the surface's direction (a lit side, a
# shaded jaw, a bright forehead all follow the normals), while the live person's own mid-scale
# shading (cheekbones, jaw line, temples: identity) is not, so the fit carries the first and
# not the second. History, on the Obama clip (tests/integration/test_swap_quality.py: frames
# whose swap is closer in identity to the photo than to that frame's original, median margin)
# and the 42 cross-identity pairs (tests/quality.lighting_match worst / median profile error):
# a plain blur at 0.2 lost the live lighting (worst 14.7, median 5.6, a "painted mask");
# a blur at 0.06 (0.12 in the inner face) kept it (9.5 / 5.1) but carried the live identity:
# 96 % of Obama frames, margin 0.063, and real OBS's screenshots of that clip at the margin
# (an end-to-end test failed on it); the fit here: 100 %, margin 0.088, cross pairs 98 %
# closer to the source (median margin 0.119 -> 0.134), lighting 11.0 / 4.7. (The fit in the
# inner face too: 88 % of the cross pairs: the normals around the nose and eyes are the live
# person's features.) Painted-over skin (no identity to keep) follows the live skin at 0.05
# with its own weights.
_SHADING_SIZE = 128
_SHADING_SIGMA = 0.1
_SHADING_SIGMA_PAINTED = 0.05
# ... and broader in the inner face (the brows-to-lips hull shrunk by _INNER_SHRINK, softened
# over _INNER_SOFT), where the shading around eyes, nose and mouth is a strong identity cue.
_SHADING_SIGMA_INNER = 0.12
_INNER_SOFT = 0.04
_INNER_SHRINK = 0.08
_SHADING_MAX = 40.0  # L*a*b* units
# The shading field's live texels weigh by how large the frame shows them (pixels per texel,
# relative to the face's mean) to this power. Unweighted, each texel counted alike and the
# swapped skin came out 2-4 L* darker than the live skin it covers, as a viewer sees it (in
# UV space the two matched: the oblique cheeks' texels, few pixels in the frame, outweighed
# the frontal ones). Sweep (skin-only ΔE76 to the covered live skin: max of 42 pairs; max and
# pairs > 4 of the 126 under coloured light; lighting profile error median of 42): power 0:
# 3.88; 5.04, 14; 3.81. 1: 3.11; 4.47, 6; 3.90. 1.5: 2.88; 4.23, 4; 3.95. 2: 2.83; 3.97, 0;
# 3.98. 3: covered ΔE (beard included) above 4 on a pair (4.55).
_DENSITY_POWER = 2.0
# The source photo's lighting made even left to right (PhotoSwapper._even_light) at this
# scale (Gaussian sigma, fraction of the UV size). Cross-identity pairs (the lighting profile's
# error: max / median / pairs > 8; closer to the source person): none 10.9 / 4.6 / 4, 98 %;
# 0.09: 10.9 / 4.2 / 3; 0.06: 10.8 / 4.0 / 3; 0.03: 10.6 / 3.7 / 2, 100 %; 0.02: 10.1 / 3.8 /
# 2 with 7 new blue pixels (4 before). Pichai's photo (lit from one side) was the worst row.
_EVEN_SIGMA = 0.03
# Ridge on the lighting fit's coefficients (fraction of the total weight): keeps a face seen
# from one side, or mostly occluded, from extrapolating wild shading where it has no data.
_LIGHT_RIDGE = 1e-4
# Live brows are often thicker than the mesh's brow contour: the shading statistics keep
# this far (fraction of the UV size) from them. (At 0.1 the whole brow ridge and the upper
# eye sockets had no live data: the field there was interpolated from forehead and cheeks,
# and the covered skin came out up to 5.7 ΔE off on shaded or made-up eye sockets; the live
# skin test drops dark grey brow hair anyway.)
_BROW_MARGIN = 0.03
# A source face smaller than the texture is magnified by bilinear sampling and looks soft next
# to the live frame (a tell-tale of a swap, and it costs identity): unsharp mask of this
# amount at this scale.
_SHARPEN = 0.7
_SHARPEN_SIGMA = 1.3  # in source pixels
# How much of the colour transfer the eyes get, per L*, a*, b* channel.
_EYE_TRANSFER = np.array([0.7, 0.15, 0.15], np.float32)
# ... and the source's beard: its lightness follows the skin's, its colour mostly stays its own
# (with the skin's full shift a brown beard turned red on a warm-lit face).
_BEARD_TRANSFER = np.array([1.0, 0.4, 0.4], np.float32)
# Cap on the global map's a*/b* gains: a face's own colour deviations (brows, eye sockets,
# stubble) amplified by a large gain overflow into hues neither face has (blue brows). At
# 1.25 a photo's own blotches (musk_1's reddish eye sockets and cheeks) came out as red
# patches on a warm, compressed live face (the Obama clip), whose skin varies more in a*
# than a sharp photo's: a swap never needs more colour variation than its source has. (The
# 42 cross pairs and their 126 tinted twins measure the same at 1.0: skin ΔE max 4.33 / 5.06.)
_CHROMA_GAIN = 1.0
# Around the eyes, an L* gain above 1 (a smooth, evenly lit source skin onto a face with more
# contrast) applies to the skin's own spread, up to this many of its standard deviations below
# its mean; beyond that, darker texels (eye make-up, lashes) keep their own depth below it
# (gain 1): the full gain turned made-up eyelids black (faces/perry_1.jpg: gains 1.5 to 2.5).
_DARK_KNEE = 1.0
# ... within this distance of the eyes (fraction of the texture size).
_PERIOCULAR = 0.07
# ... and there, texels darker than that knee carry colour in proportion to their lightness:
# their a*, b* scale by (L* + 16) / (live skin L* + 16) (at most 1), fully from this many L*
# below the knee. The transfer added the live skin's full warmth to dark make-up, whatever its
# depth: smoky lids came out dark red on a warm-lit face (jolie_3.jpg on the Obama clip:
# chroma per lightness, C* / (L* + 16), 0.98 around the eyes, the live face's 0.71, the
# photo's 0.27). Now no eye area is more saturated than both faces' own.
_DARK_CHROMA = 8.0
# Hue guard: per texel, a* and b* stay between the source texel's value and the live face's
# range nearby (min/max over a window of this size, fraction of the UV size).
_GUARD_WINDOW = 0.015
# Near the face's outline the texture follows the live skin closely (the close shading
# field) over this width (fraction of the UV size), so the paste edge matches what is next
# to it; further in, the source's own skin follows only the broad lighting.
_EDGE_FOLLOW = 0.15
_TRUST_SOFT = 0.03
# Live occlusion (a hand, a microphone, hair in front of the live face): the live face is
# unwrapped every frame into a UV image this size and compared with its own running
# reference (what it usually looks like there); texels further than _OCCLUSION_DE from the
# reference (ΔE76) are in front of the face and the swap leaves them alone. Eyes and the mouth (blinks, speech) are not
# judged. The reference follows slow changes (lighting) at _REFERENCE_RATE per frame.
_OCCLUSION_SIZE = 64
_OCCLUSION_DE = 15.0
_OCCLUSION_FACING = 0.5
_OCCLUSION_MIN_TEXELS = 8
# The live face's glasses frames are looked for in an unwrap this size (thin frames need more
# than _OCCLUSION_SIZE), on a track's first frame and then every _GLASSES_EVERY frames.
_GLASSES_LIVE_SIZE = 128
_GLASSES_EVERY = 30
# On the source, the frame's mask reaches this far past it (fraction of the texture size): the
# lens's bright inner edge and the frame's shadow go with it.
_GLASSES_GROW = 0.008
# What is painted over (a frame, strands of hair) is blended out with a soft edge of this sigma
# (fraction of the texture size), laid two sigmas outside it.
_PAINT_SOFT = 0.004
# The photo's highlights on the skin: what is lighter than the skin around it (a normalised
# blur of this sigma, fraction of the texture size) by more than _HIGHLIGHT_KNEE L* keeps
# _HIGHLIGHT_KEEP of the excess. On the 42 pairs (worst lighting profile error / covered skin
# dE; 10.86 / 4.17 without): knee 4: 8.55 / 4.18 (identity margin 0.136 -> 0.129), 6: 9.05 /
# 4.08, 8: 9.66 / 3.98; at knee 6 keeping 0.2: 8.65 / 4.11, 0.5: 9.41 / 4.06; sigma 0.04:
# 9.74 / 3.98. Knee 8 is the only one with every pair within 4.
_HIGHLIGHT_SIGMA = 0.06
_HIGHLIGHT_KNEE = 8.0
_HIGHLIGHT_KEEP = 0.35
# Skin beside the frame that fills it: within this many robust deviations of the cheeks' skin.
_GLASSES_FILL_SKIN = 2.5
# ... and takes the grain (detail finer than _GRAIN_SIGMA, fraction of the texture size) of the
# skin this far below it (the cheeks under the rims, the nose under the bridge).
_GRAIN_SIGMA = 0.006
_GRAIN_FROM = 0.12
_GRAIN_MAX = 6.0  # levels: pores and fine texture, not the edges of features
# What is seen through a lens takes the colour of the skin this close around the frame
# (fraction of the texture size).
_LENS_AROUND = 0.03
# The painted-over frame takes the lightness and colour of the skin on both sides of it (within
# _BAND_AROUND, fraction of the texture size) at scales above _BAND_SIGMA (see _relit_glasses).
_BAND_AROUND = 0.03
_BAND_SIGMA = 0.015
_REFERENCE_RATE = 0.05
# A re-estimated colour is cross-faded in over this many frames (at most the interval
# less the build frames). Each re-estimate changes a texel by ~1 level on average (at most
# ~10): quarter steps are invisible, and the flicker on the cut clip is the same as with 8
# (1.18x) for half the blends (each a full-texture addWeighted).
_FADE_FRAMES = 4
# A re-estimated texture is built over this many frames (a third each; at most interval - 1),
# then cross-faded in over the rest of the interval (at most _FADE_FRAMES).
_BUILD_FRAMES = 3
# Stands for "no bound" in the hue guard's L* plane (finite: it is resized).
_GUARD_OFF = 1e6
# Temporal smoothing of the live statistics at each re-estimate (1 = no smoothing):
# re-estimating every few frames otherwise makes the colour step visibly.
_STATS_MIX = 0.5
# Pose fade-out (MaskConfig.fade_beyond_pose): the swap is opaque while the live face turns
# (yaw and pitch together) up to _POSE_FULL degrees from the photo's view, transparent from
# _POSE_NONE on (there the photo saw the turned side at a grazing angle, or not at all), and
# moves towards that target by _POSE_RATE of the way per frame (no pop).
_POSE_FULL = 60.0
_POSE_NONE = 85.0
_POSE_RATE = 0.3
# Per-track state kept for at most this many faces (least recently swapped dropped first).
_MAX_TRACKS = 16


# Shape morph weights (fractions of the UV size): 0 on the face outline, 1 from this far in;
# the lips move this much (their live shape is the speech) and, with keep_eyes, the eyes not.
_SHAPE_EDGE = 0.12
_SHAPE_LIPS = 0.5
_SHAPE_FEATURE_FADE = 0.05
# ... and around the lips, over this width, the morph fades out: with keep_mouth (the default)
# the mouth's hole shows the live lips, recoloured, and the source's lips moved beside them
# drew a second lip outline (perry -> musk: her fuller upper lip above his; cross-identity
# margin median 0.144 -> 0.138 without the move). Without keep_mouth it moves everything there
# up or down together (the live mouth opening stays): measured on the talking clip with a
# closed-mouth source, the output's mouth reads 25 % less open than the live one without it,
# 16 % at 0.05, 10 % at 0.1, 4 % at 0.2 (which gives up more of the source's lower-face
# proportions).
_SHAPE_LIPS_FADE = 0.1
# A vertex moves at most this share of its (image) distance from the outline.
_SHAPE_REACH = 0.5
_OVAL_IDX = np.array(FACE_OVAL)
#: The live face's pixels the swapper reads lie within its mesh box grown by this fraction.
FACE_MARGIN = 0.1


@dataclass(frozen=True)
class _LiveView:
    """The live face in UV space at :data:`_SHADING_SIZE` (see :meth:`PhotoSwapper._live_view`)."""

    lab: npt.NDArray[np.float32]
    weight: npt.NDArray[np.float32]  # how well each texel is seen (0 outside the frame)
    skin: npt.NDArray[np.float32]  # 1 where the texel looks like the face's skin
    stats: LabStats | None  # the skin's colour statistics (cheeks and glabella)
    normals: npt.NDArray[np.float32] | None = None  # (n/2, n/2, 3) unit surface normals, z to the camera
    density: npt.NDArray[np.float32] | None = None  # the shading's weight for how large each texel is seen


@dataclass
class _Rebuild:
    """A re-estimated colour map being applied to the texture a band of rows per frame
    (:data:`_BUILD_FRAMES`), so no frame pays for the whole 512² rebuild."""

    matrix: npt.NDArray[np.float32]  # (3, 4) L*a*b* affine map
    shading: npt.NDArray[np.float32] | None  # small shading offsets × strength (upsampled per band)
    floor: npt.NDArray[np.float32] | None  # small live a*, b* minima, L* plane out of play (ditto)
    out: npt.NDArray[np.uint8]  # the new BGRA texture, valid above ``row``
    row: int = 0
    guard_due: bool = False  # the floor is worked out on the build's first frame
    view: _LiveView | None = None  # the estimate's view, while its shading field is still to work out
    skin_lightness: float = 50.0  # the live skin's mean L* (dark make-up's colour follows it)


@dataclass
class _Track:
    """Per-face state: the colour-corrected texture, the live skin statistics and the live
    face's running average shape (in the source face's frame)."""

    texture: npt.NDArray[np.uint8]
    stats: LabStats | None = None
    shading: npt.NDArray[np.float32] | None = None
    guard: npt.NDArray[np.float32] | None = None  # (n, n, 4): live a*, b* minima then maxima
    reference: npt.NDArray[np.float32] | None = None  # the live face's usual look, UV L*a*b*
    shown: npt.NDArray[np.uint8] | None = None  # the texture shown last frame (cross-fades)
    changed: npt.NDArray[np.bool_] | None = None  # texels unlike the reference last frame
    fade_from: npt.NDArray[np.uint8] | None = None
    fade_step: int = 0  # frames the current cross-fade has run
    fade_t: float = 1.0  # how far the current cross-fade is (the shown texture's blend)
    pending: _Rebuild | None = None  # a re-estimated texture being built, band by band
    age: int = 0
    mean_shape: npt.NDArray[np.float64] | None = None
    # the texture's pyramid levels last made: (the texture each was made from, level, image)
    mips: list[tuple[npt.NDArray[np.uint8], int, npt.NDArray[np.uint8]]] = field(default_factory=list)
    glasses: npt.NDArray[np.uint8] | None = None  # the live glasses frame, UV 0/255 (None: none)
    glasses_due: int = 0  # frames until the live glasses are looked for again
    pose: float = 0.0  # degrees the live face is turned from the photo's view (yaw and pitch)
    opacity: float | None = None  # the pose fade-out's current opacity (None: not started)
    eyes: EyeBaseline = field(default_factory=EyeBaseline)  # the live eyes' open openness
    lip_map: npt.NDArray[np.float32] | None = None  # (3, 4) affine BGR map: live lips -> source's
    lip_live: npt.NDArray[np.float32] | None = None  # the live lips' median L*a*b*
    lip_floor: npt.NDArray[np.float32] | None = None  # the source lips' low a*, b* (5th percentile, >= 0)
    lip_due: int = 0  # frames until the lips' colours are measured again


def _uv_distance(
    face: CanonicalFace, polygons: list[tuple[int, ...]], *, inside: bool, n: int = 512
) -> npt.NDArray[np.float64]:
    """Per vertex, the UV distance (fraction of the UV size) to the edge of ``polygons``,
    measured inside them (``inside``) or outside; 0 on the other side."""
    uv = face.uv.astype(np.float64)
    px = np.clip((uv * n).astype(int), 0, n - 1)
    m = np.zeros((n, n), np.uint8)
    cv2.fillPoly(m, [(uv[list(p)] * n).astype(np.int32) for p in polygons], 255)
    if not inside:
        m = 255 - m
    d = cv2.distanceTransform(m, cv2.DIST_L2, 5) / n
    return np.asarray(d[px[:, 1], px[:, 0]], np.float64)


def edge_distance(face: CanonicalFace) -> npt.NDArray[np.float64]:
    """Per vertex, its UV distance from the face outline (exactly 0 on it)."""
    d = _uv_distance(face, [FACE_OVAL], inside=True)
    d[list(FACE_OVAL)] = 0.0  # the distance is sampled a pixel off the outline
    return d


def shape_weights(face: CanonicalFace, *, keep_eyes: bool, keep_mouth: bool) -> npt.NDArray[np.float64]:
    """Per-vertex weight of the shape morph: 0 on the face outline (the paste edge stays put),
    1 inside, :data:`_SHAPE_LIPS` on the lips, 0 on the eyes when the live eyes are kept and on
    the lips (fading over :data:`_SHAPE_LIPS_FADE`) when the live mouth is."""

    w = np.clip(edge_distance(face) / _SHAPE_EDGE, 0.0, 1.0)
    near_lips = np.clip(_uv_distance(face, [LIPS_OUTER], inside=False) / _SHAPE_FEATURE_FADE, 0.0, 1.0)
    w *= _SHAPE_LIPS + (1 - _SHAPE_LIPS) * near_lips
    if keep_eyes:
        w *= np.clip(_uv_distance(face, [RIGHT_EYE, LEFT_EYE], inside=False) / _SHAPE_FEATURE_FADE, 0.0, 1.0)
    if keep_mouth:  # the mouth's hole shows the live lips: the source's moved beside them are a second outline
        w *= np.clip(_uv_distance(face, [LIPS_OUTER], inside=False) / _SHAPE_LIPS_FADE, 0.0, 1.0)
    return w


class PhotoSwapper:
    """Swap in the face from one photo: UV unwrap once, render onto the live mesh per frame.

    Per-track state (keyed by :attr:`Face.track_id`) holds the colour-corrected texture;
    otherwise the swapper is pure: it reads the frame and returns a new
    :class:`SwapResult`. Not thread-safe: one pipeline thread calls :meth:`swap`.

    Implements :class:`obs_faceswap.swap.Swapper`: :meth:`set_source` unwraps the photo (a
    :class:`~obs_faceswap.swap.SourceFace`, see :func:`obs_faceswap.sources.analyse_source`);
    until then :meth:`swap` returns ``None``.

    Args:
        face: the canonical face model (topology, UVs, mirror map).
        texture_size: side of the square UV texture in pixels.
        mask: which parts of the swapped face are used and how soft its edges are.
        color: colour transfer settings.

    Raises:
        InputError: the texture size is out of range.

    Example:
        >>> swapper = PhotoSwapper(face)
        >>> swapper.set_source([analyse_source(photo, yunet, mesh)])
        >>> result = swapper.swap(frame, live_face)   # None when the face is off-frame
        >>> if result is not None:
        ...     paste_back(frame, result, BlendConfig())
    """

    #: Nothing is swapped until :meth:`set_source` was given a photo.
    needs_source = True

    def __init__(
        self,
        face: CanonicalFace,
        *,
        texture_size: int = 512,
        mask: MaskConfig | None = None,
        color: ColorConfig | None = None,
        shape: ShapeConfig | None = None,
    ) -> None:
        if not 64 <= texture_size <= 4096:
            raise InputError(f"texture_size must be in [64, 4096], got {texture_size}")
        self.face = face
        self.size = int(texture_size)
        self.mask_config = mask or MaskConfig()
        self.color_config = color or ColorConfig()
        self.shape_config = shape or ShapeConfig()
        self._source_shape = np.zeros((468, 3), np.float64)
        self._has_source = False
        self._shape_w = shape_weights(
            face, keep_eyes=self.mask_config.keep_eyes, keep_mouth=self.mask_config.keep_mouth
        )
        # 0 on the lips, 1 from _SHAPE_LIPS_FADE away: without keep_mouth the morph's vertical
        # part there is one common shift, so the mouth keeps its live opening (a closed source
        # mouth otherwise closes an open live one by half the difference on average).
        self._lip_blend = np.clip(_uv_distance(face, [LIPS_OUTER], inside=False) / _SHAPE_LIPS_FADE, 0.0, 1.0)
        self._lip_share = (1.0 - self._lip_blend) / max(float((1.0 - self._lip_blend).sum()), 1e-9)
        self._tracks: dict[int, _Track] = {}
        self._layouts: dict[int, tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]] = {}
        # Compiled kernels (numba JIT, cached on disk) are readied now, not on the first frame.
        raster.warm_up()
        merge.warm_up()
        _warm_lips()
        tris = face.triangles
        self._uv_px = (face.uv * self.size).astype(np.float32)
        self._uv_sign = np.sign(raster.signed_areas(self._uv_px, tris))
        self._uv_area = np.maximum(np.abs(raster.signed_areas(face.uv, tris)), 1e-12)
        self._mouth = face.mouth_triangles
        # Shading statistics ignore features on both faces: same UV places, so one mask.
        n = _SHADING_SIZE
        self._uv_small = (face.uv * n).astype(np.float32)
        nonskin = _polygon_mask((n, n), [self._uv_small[list(p)] for p in (RIGHT_EYE, LEFT_EYE, LIPS_OUTER, _NOSTRILS)])
        nonskin = u8(cv2.dilate(nonskin, _disc(n * 0.04)))
        # Real brows are often thicker than the mesh's brow contour: keep well clear of them.
        brows = _polygon_mask((n, n), [self._uv_small[list(p)] for p in (RIGHT_EYEBROW, LEFT_EYEBROW)])
        nonskin = u8(cv2.max(nonskin, cv2.dilate(brows, _disc(n * _BROW_MARGIN))))
        self._shading_skin = (nonskin == 0).astype(np.float32)
        # The inner face (eyes, nose, mouth: brows to lips, shrunk), where the shading field is broader.
        inner_small = u8(cv2.erode(_polygon_mask((n, n), [self._uv_small[list(_FEATURES)]]), _disc(n * _INNER_SHRINK)))
        self._inner_small = f32(cv2.GaussianBlur(inner_small.astype(np.float32) / 255, (0, 0), n * _INNER_SOFT))
        k = _OCCLUSION_SIZE
        self._uv_occ = (face.uv * k).astype(np.float32)
        moving = _polygon_mask(
            (k, k), [self._uv_occ[list(p)] for p in (RIGHT_EYE, LEFT_EYE, LIPS_OUTER, RIGHT_EYEBROW, LEFT_EYEBROW)]
        )
        # ... nor the rim, where the mesh reaches past the silhouette (ears, background)
        layout = np.zeros((k, k), np.uint8)
        cv2.fillPoly(layout, [np.round(self._uv_occ[list(FACE_OVAL)]).astype(np.int32)], 255)
        rim = cv2.erode(layout, _disc(k * 0.16)) == 0
        self._occ_judged = (cv2.dilate(moving, _disc(k * 0.06)) == 0) & ~rim
        # The live skin's statistics come from the cheeks, the glabella and the nose's ridge
        # (never bearded), which also seed its skin model.
        self._stat_patches_small = (
            _polygon_mask(
                (n, n),
                [self._uv_small[list(p)] for p in (*_SKIN_PATCHES_CHEEKS, *_SKIN_PATCHES_GLABELLA, _SKIN_PATCH_NOSE)],
            )
            > 0
        )
        self._seed_patches_small = self._stat_patches_small
        inner = _polygon_mask((self.size, self.size), [self._uv_px[list(_FEATURES)]])
        self._inner_face = cv2.GaussianBlur(inner.astype(np.float32) / 255, (0, 0), self.size * 0.01)
        # The inner face (brows to lips): never hair, never painted over. Generously grown
        # where dark features must not be mistaken for hair; barely grown where painting may
        # reach (the strip above the brows is often in the fringe's shadow).
        self._features = cv2.dilate(inner, _disc(self.size * 0.04))
        self._features_tight = cv2.dilate(inner, _disc(self.size * 0.01))
        # The features themselves (eyes, brows, lips, nostrils), each with a small margin:
        # inside the inner face, dark thin things elsewhere (glasses frames, strands of hair,
        # fingers' edges) are in front of the face, not part of it.
        parts = _polygon_mask(
            (self.size, self.size),
            [self._uv_px[list(p)] for p in (RIGHT_EYE, LEFT_EYE, RIGHT_EYEBROW, LEFT_EYEBROW, LIPS_OUTER)],
        )
        nostrils = _polygon_mask((self.size, self.size), [self._uv_px[list(_NOSTRILS)]])
        self._feature_parts = cv2.max(cv2.dilate(parts, _disc(self.size * _PART_MARGIN)), nostrils)
        self._occluders = np.zeros((self.size, self.size), bool)
        self._beard = np.zeros((self.size, self.size), bool)
        # Glasses frames: found on the source texture (painted over with the skin under them)
        # and on the live face (kept in front of the swap), by one detector.
        self._glasses_layout = glasses_layout(face.uv, self.size)
        self._glasses_live_layout = glasses_layout(face.uv, _GLASSES_LIVE_SIZE)
        self._uv_glasses = (face.uv * _GLASSES_LIVE_SIZE).astype(np.float32)
        self.glasses = Glasses.none(self.size)
        self._bridge = _polygon_mask((self.size, self.size), [self._uv_px[list(_BRIDGE)]]) > 0
        # The cheeks' skin patches: what skin filled in under a glasses frame is judged against.
        self._cheeks = _polygon_mask((self.size, self.size), [self._uv_px[list(p)] for p in _SKIN_PATCHES_CHEEKS]) > 0
        # ... looked for above the nose's tip only: below it, dark texture is a beard or
        # stubble, which is the source's own.
        nose_v = float(self._uv_px[NOSE_TIP, 1])
        self._above_nose = (np.arange(self.size, dtype=np.float32) < nose_v)[:, None] & np.ones((1, self.size), bool)
        lips = _polygon_mask((self.size, self.size), [self._uv_px[list(LIPS_OUTER)]])
        self._around_mouth = cv2.dilate(lips, _disc(2 * _BEARD_REACH * self.size + 1)) > 0
        # The eyes and the skin around them (lids, sockets), softly: where eye make-up is.
        eyes = _polygon_mask((self.size, self.size), [self._uv_px[list(p)] for p in (RIGHT_EYE, LEFT_EYE)])
        around = cv2.dilate(eyes, _disc(2 * _PERIOCULAR * self.size)).astype(np.float32) / 255
        self._periocular = f32(cv2.GaussianBlur(around, (0, 0), _PERIOCULAR * self.size / 3))
        # Per-channel transfer weights inside each eye's box (1 elsewhere).
        self._eye_weights = []
        for eye in (RIGHT_EYE, LEFT_EYE):
            pts = self._uv_px[list(eye)]
            m = _polygon_mask((self.size, self.size), [pts])
            blurred = f32(cv2.GaussianBlur(m.astype(np.float32) / 255, (0, 0), self.size * 0.004))
            pad = int(self.size * 0.02)
            x0, y0 = np.maximum(np.floor(pts.min(axis=0)).astype(int) - pad, 0)
            x1, y1 = np.minimum(np.ceil(pts.max(axis=0)).astype(int) + pad, self.size)
            box = blurred[y0:y1, x0:x1, None]
            self._eye_weights.append(((y0, y1, x0, x1), (1 - box * (1 - _EYE_TRANSFER)).astype(np.float32)))
        self._own_colour = list(self._eye_weights)  # with the source's beard once it is known
        # The upper face, from just above the brows (brows are a strong identity cue and stay
        # the source's) to a quarter of the way to the mesh's top edge, then fully.
        v = face.vertices
        brow = float(v[list(RIGHT_EYEBROW) + list(LEFT_EYEBROW), 1].max())
        top = float(v[:, 1].max())
        self._upper = self._interpolate(np.clip((v[:, 1] - brow) / (0.25 * (top - brow)), 0, 1), None, self.size)[0]

    @classmethod
    def from_photo(
        cls,
        image: ImageBGR,
        landmarks: npt.ArrayLike,
        face: CanonicalFace,
        *,
        texture_size: int = 512,
        mask: MaskConfig | None = None,
        color: ColorConfig | None = None,
        shape: ShapeConfig | None = None,
    ) -> PhotoSwapper:
        """A swapper with ``image`` (whose face has ``landmarks``) as its source already set."""
        swapper = cls(face, texture_size=texture_size, mask=mask, color=color, shape=shape)
        lm = np.asarray(landmarks, np.float32)
        keypoints = (
            five_points(lm)
            if lm.ndim == 2 and lm.shape[0] >= 468 and lm.shape[1] >= 2
            else np.zeros((5, 2), np.float32)
        )
        swapper.set_source([SourceFace(image, lm, keypoints)])
        return swapper

    # -- the Swapper protocol ------------------------------------------------------------
    def set_source(self, faces: Sequence[SourceFace]) -> None:
        """Unwrap the first photo of ``faces`` into the texture (the others are not used yet).

        Raises:
            InputError: no photo given, or the image or landmarks cannot be used.
        """
        if not faces:
            raise InputError("the photo swapper needs a source photo; none was given")
        image, lm = faces[0].image, np.asarray(faces[0].landmarks, np.float32)
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise InputError(
                f"source image must be (H, W, 3) uint8 BGR, got "
                f"{getattr(image, 'shape', None)} {getattr(image, 'dtype', type(image))}"
            )
        if lm.ndim != 2 or lm.shape[0] not in (468, 478) or lm.shape[1] != 3 or not np.isfinite(lm).all():
            raise InputError(f"source landmarks must be finite (468, 3), got {lm.shape}")
        self._source_shape = lm[:468].astype(np.float64)
        self._tracks.clear()
        self._unwrap(image, lm[:468])
        self._has_source = True

    def reads(self, face: Face, frame_hw: tuple[int, int]) -> Box | None:
        """The live face's box grown by :data:`FACE_MARGIN`: the render's crop (mesh box +3 px, the
        shape morph stays inside the outline) and the live skin it measures lie within it."""
        h, w = frame_hw
        return clip_box(face.xyxy, w, h, FACE_MARGIN)

    def reconfigure(self, config: SwapperConfig) -> bool:
        """Take new mask, colour or shape settings in place; ``False`` for another kind or texture size."""
        if config.kind != "photo" or config.photo.texture_size != self.size:
            return False
        self.update(mask=config.photo.mask, color=config.photo.color, shape=config.photo.shape)
        return True

    def close(self) -> None:
        """Nothing to release (no sessions); per-track state is dropped."""
        self._tracks.clear()

    # -- source side ---------------------------------------------------------------------
    def _unwrap(self, image: ImageBGR, lm: FloatArray) -> None:
        """Sample the photo into UV space, directly and mirrored, and rate both views."""
        size, tris, uvp = self.size, self.face.triangles, self._uv_px
        xy = lm[:, :2]
        mx, my, ids = raster.rasterise(uvp, xy, tris, (size, size), with_ids=True)
        assert ids is not None
        self._direct = u8(cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
        # The mirror view takes each triangle's pixels from its counterpart on the other side
        # of the face (vertex i sampled where mirror[i] is): exact, whatever the UV layout.
        mx, my, _ = raster.rasterise(uvp, xy[self.face.mirror], tris, (size, size))
        self._mirrored = cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        self._valid = ids >= 0
        # Texels per source pixel (linear), over the triangles the photo shows squarely.
        front = facing_ratio(lm, tris, self._uv_sign) > 0.5
        if front.any():
            uv_area = np.abs(raster.signed_areas(uvp, tris[front])).sum()
            px_area = np.abs(raster.signed_areas(xy, tris[front])).sum()
            self.magnification = float(np.sqrt(uv_area / max(px_area, 1e-9)))
        else:
            self.magnification = 1.0
        facing = self._vertex_field(facing_ratio(lm, tris, self._uv_sign))
        both = self._interpolate(facing, facing[self.face.mirror], size)
        self._facing_direct, self._facing_mirror = both[0], both[1]
        self._build_texture()

    def _build_texture(self) -> None:
        """Combine direct and mirrored views, trim hair, fill, and convert (once per setting)."""
        size = self.size
        valid = self._valid.astype(np.float32)
        if self.mask_config.trim_hair:
            keep_d = self._skin_keep(self._direct)
            # Above the brows, stay well clear of the hair's edge: its thin, half-skin strands
            # pass the skin test but look like a ragged line once the hair is painted over.
            clear = cv2.erode(keep_d, _disc(size * 0.03))
            keep_d = keep_d * (1 - self._upper) + clear * self._upper
            keep_d = cv2.GaussianBlur(keep_d, (0, 0), size * 0.006)
        else:
            keep_d = valid
            self._beard = np.zeros_like(self._valid)
        keep_m = _mirror_u(keep_d) * valid
        q_d = np.clip((self._facing_direct - _FACING_LO) / (_FACING_HI - _FACING_LO), 0, 1) * keep_d
        q_m = np.clip((self._facing_mirror - _FACING_LO) / (_FACING_HI - _FACING_LO), 0, 1) * keep_m
        # Prefer the direct view (mirroring everything would erase the face's asymmetry); take
        # the mirror where the direct view is poor or hair, and the mirror is better.
        w = cv2.GaussianBlur((1 - q_d) * q_m, (0, 0), size * 0.008)
        self.mirrored_fraction = float(w[self._valid].mean())
        w3 = w[..., None]
        tex = cv2.convertScaleAbs(self._direct.astype(np.float32) * (1 - w3) + self._mirrored.astype(np.float32) * w3)
        skin = keep_d * (1 - w) + keep_m * w  # the source's own skin, trusted
        if self.mask_config.trim_hair and self.glasses.found:
            tex = self._untinted(tex, skin)
        seen = np.maximum(self._facing_direct * keep_d, self._facing_mirror * keep_m)
        seen = np.clip((seen - _VISIBLE_LO) / (_VISIBLE_HI - _VISIBLE_LO), 0, 1)
        trusted = skin * np.maximum(seen, self._inner_face)
        # What is not trusted (hair, background, smears of a few oblique pixels) is painted
        # over with the surrounding skin rather than cut out: a cut lets the live face show
        # through inside the swapped one (the live brows between the source's brows and its
        # fringe, the live cheek's edge) and gives away much of the identity. The painted
        # forehead fades out towards the mesh's top edge (the live hairline side); the rest of
        # the silhouette is feathered per frame.
        dist = cv2.distanceTransform(self._valid.astype(np.uint8), cv2.DIST_L2, 5)
        cover = 1.0 - self._upper * (1.0 - np.clip(dist / (_TOP_FADE * size), 0.0, 1.0))
        alpha = cv2.convertScaleAbs(cover * valid, alpha=255.0)
        # The fill: nearby skin colour (features excluded as sources), also outside the UV
        # layout so bilinear sampling and soft mask edges pick up skin, never black or hair.
        sources = (trusted > 0.98) & self._valid & (self._features == 0)
        filled = _push_pull_fill(tex, sources).astype(np.float32)
        if self.mask_config.trim_hair and self.glasses.found:
            # Under a glasses frame: the skin right beside it (a far fill is the wrong shade
            # around the eyes); the eyes and brows are not fill sources.
            frame = self.glasses.mask
            beside = self._valid & (skin > 0.9) & ~self._glasses_layout.keep
            beside &= cv2.dilate(frame.astype(np.uint8), _disc(size * 0.01)) == 0
            # ... lit like the cheeks: not the frame's shadow, nor skin seen through a tinted lens
            lab = to_lab(tex)
            cheeks = self._cheeks & beside
            if np.count_nonzero(cheeks) >= 16:
                beside &= _skin_distance(lab, lab[cheeks]) <= _GLASSES_FILL_SKIN
            near = cv2.GaussianBlur(frame.astype(np.float32), (0, 0), size * 0.01)[..., None]
            local = _push_pull_fill(tex, beside).astype(np.float32)
            # ... with the grain of the skin below it (a flat fill reads as a band across the eyes)
            t32 = tex.astype(np.float32)
            grain = np.clip(t32 - cv2.GaussianBlur(t32, (0, 0), size * _GRAIN_SIGMA), -_GRAIN_MAX, _GRAIN_MAX)
            dy = int(round(_GRAIN_FROM * size))
            donor = np.zeros_like(grain)
            donor[:-dy] = grain[dy:] * (self._valid & (skin > 0.9) & ~frame)[dy:, :, None]
            filled = filled * (1 - near) + (local + donor) * near
        kept = sources | ((self._features_tight > 0) & ~self._occluders)
        s3 = np.where(kept, 1.0, trusted)
        if self.mask_config.trim_hair:  # what is in front of the source face: painted over, fully
            # The soft edge lies outside it: a blur straddling the mask let a quarter of its
            # outermost texels through (a frame's bright lens bevel: a light ring around each eye).
            grown = cv2.dilate(self._occluders.astype(np.uint8), _disc(4 * _PAINT_SOFT * size))
            s3 = np.minimum(s3, 1.0 - cv2.GaussianBlur(grown.astype(np.float32), (0, 0), _PAINT_SOFT * size))
        s3 = s3[..., None].astype(np.float32)
        tex = tex.astype(np.float32) * s3 + filled * (1 - s3)
        if self.mask_config.trim_hair and self.glasses.found:
            tex = self._relit_glasses(tex, skin)
        # the source's own skin (not beard or painted-over texels) at the shading field's size
        own = f32(
            cv2.resize(
                trusted.astype(np.float32) * (1 - self._beard.astype(np.float32)),
                (_SHADING_SIZE, _SHADING_SIZE),
                interpolation=cv2.INTER_AREA,
            )
            * self._shading_skin
        )
        tex = self._tamed_highlights(self._even_light(tex, own), own)
        # A source face smaller than the texture was magnified by bilinear sampling and looks
        # soft next to the live frame: unsharp-mask at the scale of one source pixel.
        amount = _SHARPEN * float(np.clip(self.magnification - 0.5, 0.0, 1.0))
        if amount > 0:
            sigma = max(1.0, _SHARPEN_SIGMA * self.magnification)
            tex = tex + amount * (tex - cv2.GaussianBlur(tex, (0, 0), sigma))
        tex = cv2.convertScaleAbs(tex)
        cheeks = _polygon_mask(
            (size, size), [self._uv_px[list(p)] for p in _SKIN_PATCHES_CHEEKS + _SKIN_PATCHES_GLABELLA]
        )
        tex_lab = to_lab(tex)
        patch = cheeks > 0
        used = patch & (alpha > 200) & (trusted > 0.5)
        if used.sum() >= 16:
            used &= _skin_distance(tex_lab, tex_lab[used]) <= _SKIN_DISTANCE
        skin = robust_lab_stats(_dominant(tex_lab[used])) if used.sum() >= 16 else robust_lab_stats(tex_lab[patch])
        if skin is None:
            raise InputError("the source face is too small to sample its skin colour")
        self.source_stats = skin
        # How far each texel is darker than the skin's own spread reaches (<= 0; see _DARK_KNEE).
        # Around the eyes only (make-up): elsewhere dark texels are stubble, nostrils and lips,
        # whose depth follows the live face's contrast.
        knee = float(skin.mean[0] - _DARK_KNEE * max(float(skin.std[0]), 1.0))
        self._dark_excess = np.minimum(tex_lab[..., 0] - np.float32(knee), np.float32(0.0)) * self._periocular
        # ... how much of its colour such dark make-up sheds in proportion to its lightness (see
        # _DARK_CHROMA), and the box it lies in (each rebuild works on that box only)
        depth = np.clip(self._dark_excess * np.float32(-1.0 / _DARK_CHROMA), 0.0, 1.0)
        ys, xs = np.nonzero(depth)
        self._dark_box = (int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1) if len(ys) else None
        self._dark_depth = depth
        # How much of the face (brows to chin, the cheeks' middle) is the photo's own, and how
        # much of it something in front of the face covered (for ``preview``).
        face = (cv2.dilate(self._features, _disc(size * 0.08)) > 0) & self._valid & (self._upper < 0.5)
        self.own_fraction = float(np.clip(trusted[face], 0, 1).mean()) if face.any() else 0.0
        self.occluded_fraction = float(self._occluders[face].mean()) if face.any() else 0.0
        self.texture_bgr = tex
        self.texture_alpha = alpha
        self._texture_lab = tex_lab
        # The hue guard's floor from the source: its a*, b* (contiguous, with L* out of play),
        # so the guard runs as two whole-image OpenCV calls instead of strided numpy.
        self._guard_source = tex_lab.copy()
        self._guard_source[..., 0] = -_GUARD_OFF
        self._texture_lab_small = cv2.resize(
            self._texture_lab, (_SHADING_SIZE, _SHADING_SIZE), interpolation=cv2.INTER_AREA
        )
        self._base_texture = _with_alpha(tex, alpha)
        n = _SHADING_SIZE
        small_alpha = cv2.resize(alpha, (n, n), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        # Skin filled in under a glasses frame is the source's own skin from right beside it: it
        # follows the live lighting as broadly as that skin does (a close follow showed the
        # frame's outline as a lighter or darker band on most targets).
        shading_trust = trusted
        if self.mask_config.trim_hair and self.glasses.found:
            shading_trust = np.maximum(trusted, self.glasses.mask.astype(np.float32) * seen)
        self._trusted_small = cv2.resize(shading_trust.astype(np.float32), (n, n), interpolation=cv2.INTER_AREA)
        # ... except near the outline, where the swapped skin meets the live skin.
        inside = above(u8(cv2.resize(alpha, (n, n), interpolation=cv2.INTER_AREA)), 0)
        depth = cv2.distanceTransform(
            cv2.copyMakeBorder(inside, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0), cv2.DIST_L2, 5
        )[1:-1, 1:-1]
        self._trusted_small *= np.clip(depth / (_EDGE_FOLLOW * n), 0.0, 1.0)
        # A soft transition: a sharp one between broad and close following shows as a band
        # (across the forehead, where the source's own skin meets the painted-over fringe).
        self._trusted_small = cv2.GaussianBlur(self._trusted_small, (0, 0), _TRUST_SOFT * n)
        # The source's beard keeps most of its own colour (like the eyes, see _build).
        self._own_colour = list(self._eye_weights)
        if self._beard.any():
            beard = f32(cv2.GaussianBlur(self._beard.astype(np.float32), (0, 0), size * 0.004))
            ys, xs = np.nonzero(beard > 1e-3)
            y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
            wgt = 1 - beard[y0:y1, x0:x1, None] * (1 - _BEARD_TRANSFER)
            self._own_colour.append(((y0, y1, x0, x1), wgt.astype(np.float32)))
        # Broad lighting is measured on the source's own skin; the close follow of painted
        # areas on everything rendered. The source's beard is no skin to relight: measured as
        # skin, the live chin's lighter skin under it read as light on it and bleached it grey.
        source_skin = self._shading_skin * (
            1 - cv2.resize(self._beard.astype(np.float32), (n, n), interpolation=cv2.INTER_AREA)
        )
        self._shading_weights = (
            source_skin * small_alpha * self._trusted_small,
            source_skin * small_alpha,
        )
        for t in self._tracks.values():
            t.age = 0
            t.shading = None
            t.lip_map, t.lip_live, t.lip_floor, t.lip_due = None, None, None, 0  # the new source's lips, at once

    def _even_light(self, tex: npt.NDArray[np.float32], own: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """``tex`` (float BGR) with the left-right difference of its lighting taken out (``own``:
        the source's own skin at :data:`_SHADING_SIZE`, see :meth:`_build_texture`).

        A face's skin is the same colour on both sides; a lamp or window at one side of the
        source photo is not, and was carried onto every live face (one side of it brighter, a
        lit cheekbone). The source's own skin (not features, beard or painted-over texels) is
        low-passed (:data:`_EVEN_SIGMA`) where both it and its mirror image are skin, and half
        the difference to the mirror image is subtracted in L*a*b* from the whole texture. What
        is the same on both sides (a top light's shaded jaw, the shading of nose and eyes under
        a frontal light: the face's shape) stays; the live lighting comes from the shading field.
        """
        n, size = _SHADING_SIZE, self.size
        lab = to_lab(u8(cv2.convertScaleAbs(tex)))
        both = f32(own * _mirror_u(own))
        small = f32(cv2.resize(lab, (n, n), interpolation=cv2.INTER_AREA))
        low = _normalised_blur(small * both[..., None], both, _EVEN_SIGMA)
        odd = f32(cv2.resize((low - _mirror_u(low)) * 0.5, (size, size), interpolation=cv2.INTER_LINEAR))
        return from_lab(f32(lab - odd)).astype(np.float32)

    def _tamed_highlights(self, tex: npt.NDArray[np.float32], own: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """``tex`` (float BGR) with the photo's highlights on the skin toned down (``own``: the
        source's own skin at :data:`_SHADING_SIZE`, see :meth:`_build_texture`).

        A lamp's shine on the source's nose, forehead or cheekbones belongs to the photo's
        lighting, not to the face, and was carried onto every live face as a white streak
        (faces/pichai_1.jpg's nose); the live lighting comes from the shading field. Skin
        lighter than its own surroundings (a normalised blur of the source's own skin,
        :data:`_HIGHLIGHT_SIGMA`) by more than :data:`_HIGHLIGHT_KNEE` keeps
        :data:`_HIGHLIGHT_KEEP` of the excess, and its a*, b* move back towards the
        surroundings' by the share of lightness taken away (a shine is whiter than the skin).
        Features, the beard and texels far from the source's own skin are left alone.
        """
        n, size = _SHADING_SIZE, self.size
        lab = to_lab(u8(cv2.convertScaleAbs(tex)))
        small = f32(cv2.resize(lab, (n, n), interpolation=cv2.INTER_AREA))

        def low(weight: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
            num = cv2.GaussianBlur(small * weight[..., None], (0, 0), _HIGHLIGHT_SIGMA * n)
            den = f32(cv2.GaussianBlur(weight, (0, 0), _HIGHLIGHT_SIGMA * n))
            return f32(num / np.maximum(den, 1e-3)[..., None]), den

        # twice: the second time without the highlights, which lift their own surroundings
        first, _ = low(own)
        around_small, den = low(f32(own * (small[..., 0] - first[..., 0] <= _HIGHLIGHT_KNEE)))
        around = f32(cv2.resize(around_small, (size, size), interpolation=cv2.INTER_LINEAR))
        # skin only (not features or beard), and only where enough of the source's skin is near
        skin = ((self._feature_parts == 0) & self._valid & ~self._beard).astype(np.float32)
        where = f32(cv2.GaussianBlur(skin, (0, 0), size * 0.004))
        where *= np.clip(cv2.resize(den, (size, size), interpolation=cv2.INTER_LINEAR) / 0.5, 0.0, 1.0)
        excess = lab[..., 0] - around[..., 0]
        cut = np.maximum(excess - _HIGHLIGHT_KNEE, 0.0) * np.float32(1.0 - _HIGHLIGHT_KEEP) * where
        share = np.clip(cut / np.maximum(excess, 1e-3), 0.0, 1.0)
        lab[..., 0] -= cut
        lab[..., 1:] += (around[..., 1:] - lab[..., 1:]) * share[..., None]
        return from_lab(f32(lab)).astype(np.float32)

    def _untinted(self, tex: ImageBGR, skin: npt.NDArray[np.float32]) -> ImageBGR:
        """``tex`` with what is seen through the glasses' lenses shifted to the colour of the skin
        around the frame: a lens darkens, tints and shades what is behind it, and once the frame
        is painted out that shows as a patch around each eye."""
        size, layout = self.size, self._glasses_layout
        frame = self.glasses.mask
        lens = lens_areas(self.glasses, layout)
        around = cv2.dilate(frame.astype(np.uint8), _disc(2 * _LENS_AROUND * size + 1)) > 0
        outside = around & ~frame & ~lens & self._valid & (skin > 0.9) & ~layout.keep
        inside = lens & ~frame & self._valid & ~layout.keep
        if np.count_nonzero(outside) < 50 or np.count_nonzero(inside) < 50:
            return tex
        lab = to_lab(tex)
        shift = np.median(lab[outside], axis=0) - np.median(lab[inside], axis=0)
        # A lens only darkens what is behind it: lightening that is undone, but skin seen through
        # it that is lighter than the ring around the frame (temples in shade, brows, stubble) is
        # the face's own lighting (the lit cheekbones under the eyes). Darkening it to the ring's
        # median (faces/pichai_1.jpg: by 18 L*) flattened the face's shading into a band across
        # the eyes and cost the lighting profile (pichai -> johansson 12.7, limit 10).
        shift[0] = max(float(shift[0]), 0.0)
        weight = cv2.GaussianBlur(lens.astype(np.float32), (0, 0), size * 0.006)[..., None]
        return from_lab(f32(lab + weight * shift.astype(np.float32)))

    def _relit_glasses(self, tex: npt.NDArray[np.float32], skin: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """``tex`` (float BGR) with the painted-over frame given the lightness and colour of the
        source's own skin on both sides of it, its fine detail (the grain) kept.

        The fill under a frame comes from skin beside it picked for being lit like the cheeks
        (lighter skin passes, shaded skin does not): it read as a smooth, paler ring around each
        lens and along the arms. Its low frequencies (Gaussian of :data:`_BAND_SIGMA`, over the
        frame itself) are replaced by a smooth interpolation of the skin within
        :data:`_BAND_AROUND` of it: what is seen through the lens inside the rim, the cheeks
        below, the temples and the glabella (brows, eyes, hair and beard are not skin here).
        """
        size, layout = self.size, self._glasses_layout
        zone = self.glasses.mask & self._valid & ~layout.keep
        reach = cv2.dilate(u8(zone.astype(np.uint8)), _disc(2 * _BAND_AROUND * size + 1)) > 0
        t8 = u8(cv2.convertScaleAbs(tex))
        lab = to_lab(t8)
        cheeks = self._cheeks & self._valid
        around = reach & ~zone & self._valid & (skin > 0.9) & (self._feature_parts == 0) & ~self._occluders
        if np.count_nonzero(cheeks) >= 16:
            around &= _skin_distance(lab, lab[cheeks]) <= _SKIN_DISTANCE
        if np.count_nonzero(around) < 50 or not zone.any():
            return tex
        smooth = to_lab(_push_pull_fill(t8, around))
        w = zone.astype(np.float32)
        sigma = _BAND_SIGMA * size

        def low(values: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
            num = cv2.GaussianBlur(values * w[..., None], (0, 0), sigma)
            return f32(num / np.maximum(cv2.GaussianBlur(w, (0, 0), sigma), 1e-3)[..., None])

        feather = cv2.GaussianBlur(w, (0, 0), size * 0.004)[..., None]
        relit = lab + (low(smooth) - low(lab)) * feather
        return from_lab(f32(relit)).astype(np.float32)

    def _skin_keep(self, tex: ImageBGR) -> npt.NDArray[np.float32]:
        """1 where the texture shows the source's face, 0 where hair or background intrudes.

        The mesh reaches past the hairline and, at the sides, past the face's silhouette, so
        fringe, sideburns and background land in the texture's outer parts. Outside the inner
        features (eyes, brows, lips), texels unlike the source's own skin (robust L*a*b*
        models of the cheeks and of the glabella: foreheads are often brighter or redder than
        cheeks) that connect to the texture's outer edge are not the face; neither is
        whatever that cuts off from the central face.
        """
        size, uvp, valid = self.size, self._uv_px, self._valid
        lab = to_lab(tex)
        d_cheeks, d_glabella = (
            _skin_distance(lab, lab[(_polygon_mask((size, size), [uvp[list(p)] for p in patch]) > 0) & valid])
            for patch in (_SKIN_PATCHES_CHEEKS, _SKIN_PATCHES_GLABELLA)
        )
        # The forehead is judged by the glabella alone: cheeks are shaded and their spread
        # lets a light fringe pass as skin.
        distance = np.where(self._upper > 0.5, d_glabella, np.minimum(d_cheeks, d_glabella))
        # Brows and eyes are dark but never hair: protected with a small margin, so a fringe
        # reaching down to the brows is still found.
        # Above the nose's tip, only the features themselves are protected: a strand of hair
        # that reaches in past a brow's end or across a temple is found too.
        protected = np.where(self._above_nose, self._feature_parts, self._features_tight)
        unlike = ((distance > _SKIN_DISTANCE) & valid & (protected == 0)).astype(np.uint8)
        unlike = cv2.morphologyEx(unlike, cv2.MORPH_CLOSE, _disc(size * 0.016))
        v8 = valid.astype(np.uint8)
        edge = cv2.subtract(v8, cv2.erode(v8, np.ones((5, 5), np.uint8)))
        _, labels = cv2.connectedComponents(unlike)
        touching = np.unique(labels[(edge > 0) & (unlike > 0)])
        hair = np.isin(labels, touching[touching > 0])
        # A beard is the source's own, not hair to paint over: below the nose's tip, what
        # belongs to a structure that reaches the mouth (a moustache, a goatee, a full beard to
        # the jaw) stays where the photo shows it squarely (at the oblique rim the background
        # joins it). Hair falling beside the face does not reach the mouth.
        beard = np.unique(labels[self._around_mouth & (unlike > 0)])
        self._beard = np.isin(labels, beard[beard > 0]) & ~self._above_nose & (self._facing_direct > _FACING_HI)
        hair &= ~self._beard
        keep = (valid & ~hair).astype(np.uint8)
        _, labels = cv2.connectedComponents(keep)
        nose = np.clip(np.round(uvp[NOSE_TIP]).astype(int), 0, size - 1)
        centre = labels[nose[1], nose[0]]
        if centre > 0:
            keep = (labels == centre).astype(np.uint8)
        keep = u8(cv2.morphologyEx(keep, cv2.MORPH_OPEN, _disc(size * 0.02)))
        # Glasses frames and strands across the inner face: thin and much darker than what
        # is around them (a black-hat response), away from the features themselves.
        thin = cv2.morphologyEx(lab[..., 0], cv2.MORPH_BLACKHAT, _disc(size * _OCCLUDER_WIDTH))
        occ = ((thin > _OCCLUDER_DARK) & valid & (self._feature_parts == 0) & self._above_nose).astype(np.uint8)
        # Long ones only (a frame's rim, a strand): creases, lashes and pores are short.
        n_cc, labels, cc, _ = cv2.connectedComponentsWithStats(occ)
        long_cc = np.flatnonzero(
            np.maximum(cc[:, cv2.CC_STAT_WIDTH], cc[:, cv2.CC_STAT_HEIGHT]) >= _OCCLUDER_LENGTH * size
        )
        long_cc = long_cc[long_cc > 0]
        # Without glasses (no dark bar across the nose's bridge), only what reaches in from
        # outside the inner face (strands of hair): an eyeliner's wing or a crease does not.
        if float((thin[self._bridge] > _OCCLUDER_DARK).mean()) < _GLASSES_BRIDGE:
            total = np.bincount(labels.ravel(), minlength=n_cc)
            out = np.bincount(labels[self._features_tight == 0], minlength=n_cc)
            long_cc = long_cc[out[long_cc] >= 0.5 * total[long_cc]]
        occ = np.isin(labels, long_cc).astype(np.uint8)
        occ = cv2.dilate(occ, _disc(size * 0.016))
        # The whole frame of a pair of glasses (rims, bridge, arms): found by its ring around
        # both eyes, masked to its edge (the lenses, the eyes, lashes and brows stay).
        self.glasses = find_glasses(lab[..., 0], valid, self._glasses_layout, grow=_GLASSES_GROW)
        self._occluders = (occ > 0) | self.glasses.mask
        keep[self._occluders] = 0
        return keep.astype(np.float32)

    def _vertex_field(self, per_tri: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Per-vertex mean of a per-triangle value (for smooth interpolation)."""
        idx = self.face.triangles.ravel()
        nv = len(self.face.vertices)
        acc = np.bincount(idx, weights=np.repeat(per_tri, 3), minlength=nv)
        cnt = np.bincount(idx, minlength=nv)
        return acc / np.maximum(cnt, 1)

    def _interpolate(self, a: npt.ArrayLike, b: npt.ArrayLike | None, n: int) -> npt.NDArray[np.float32]:
        """``(2, n, n)`` UV-space images of up to two per-vertex values (0 outside the layout).

        The rasteriser interpolates whatever per-vertex 2-vector it is given as "source
        position"; here that carries values instead of coordinates.
        """
        if n <= _SHADING_SIZE:  # the small layouts filled every frame: a gather each
            layout = self._layouts.get(n)
            if layout is None:
                uv_n = (self.face.uv * n).astype(np.float32)
                layout = self._layouts[n] = raster.barycentrics(uv_n, self.face.triangles, (n, n))
            out = np.zeros((2, n, n), np.float32)
            out[0] = raster.interpolate(layout, a, (n, n))
            if b is not None:
                out[1] = raster.interpolate(layout, b, (n, n))
            return out
        vals = np.zeros((len(self.face.vertices), 2), np.float32)
        vals[:, 0] = a
        if b is not None:
            vals[:, 1] = b
        uv = self._uv_px if n == self.size else (self.face.uv * n).astype(np.float32)
        mx, my, _ = raster.rasterise(uv, vals, self.face.triangles, (n, n))
        inside = mx > raster.OUTSIDE / 2
        return np.stack([np.where(inside, mx, 0.0), np.where(inside, my, 0.0)]).astype(np.float32)

    # -- introspection -------------------------------------------------------------------
    @property
    def texture(self) -> npt.NDArray[np.uint8]:
        """``(size, size, 4)`` BGRA UV texture before colour transfer (alpha: what is used)."""
        return self._base_texture

    @property
    def photo_texture(self) -> ImageBGR:
        """``(size, size, 3)`` the photo sampled straight into UV space (no fill, no trim)."""
        return self._direct

    @property
    def tracks(self) -> list[int]:
        """Track ids with per-face state, least recently swapped first."""
        return list(self._tracks)

    # -- settings ------------------------------------------------------------------------
    def update(
        self, *, mask: MaskConfig | None = None, color: ColorConfig | None = None, shape: ShapeConfig | None = None
    ) -> None:
        """Apply new mask, colour or shape settings without unwrapping the photo again."""
        if mask is not None:
            retrim = mask.trim_hair != self.mask_config.trim_hair
            if (mask.keep_eyes, mask.keep_mouth) != (self.mask_config.keep_eyes, self.mask_config.keep_mouth):
                self._shape_w = shape_weights(self.face, keep_eyes=mask.keep_eyes, keep_mouth=mask.keep_mouth)
            self.mask_config = mask
            if retrim and self._has_source:
                self._build_texture()
        if shape is not None:
            self.shape_config = shape
        if color is not None:
            self.color_config = color
        # Each track's texture is rebuilt (colour transfer) on its next frame, and its glasses
        # looked for again.
        for t in self._tracks.values():
            t.age = 0
            t.glasses_due = 0

    def reset(self, track_id: int | None = None) -> None:
        """Forget per-track state (all tracks when ``track_id`` is None)."""
        if track_id is None:
            self._tracks.clear()
        else:
            self._tracks.pop(track_id, None)

    # -- per frame -----------------------------------------------------------------------
    def swap(self, frame: ImageBGR, face: Face) -> SwapResult | None:
        """Render the source face onto ``face`` in ``frame``.

        Args:
            frame: ``(H, W, 3)`` uint8 BGR; read only.
            face: the live face (mesh points in ``frame`` pixels).

        Returns:
            The crop around the face, its soft mask and the translation to its place in the
            frame; ``None`` when the face is degenerate or outside the frame.
        """
        lm = face.landmarks[:468]
        if not self._has_source or not np.isfinite(lm).all():
            return None
        fh, fw = frame.shape[:2]
        track = self._track(face.track_id)
        openness = eye_openness(lm)
        open_eyes = track.eyes.update(openness)
        # A blink is no part of the face's usual shape: averaged in, it left the rendered eyes
        # wider than the live ones after every blink (by ~4 % after five shut frames).
        shaped = self._shaped(track, lm, follow=bool((openness >= OPEN_SHARE * open_eyes).all()))
        if not self.mask_config.keep_eyes:  # (kept live eyes blink by themselves)
            # the mesh reads a shut eye as a third closed: the rendered lids shut in full
            shaped = close_lids(shaped, closing_share(openness, open_eyes))
        both = np.concatenate([lm[:, :2], shaped[:, :2]])
        lo = np.floor(both.min(axis=0)).astype(int) - 2
        hi = np.ceil(both.max(axis=0)).astype(int) + 3
        face_w = float(hi[0] - lo[0])
        if face_w < 8 or hi[1] - lo[1] < 8:
            return None
        x0, y0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
        x1, y1 = min(int(hi[0]), fw), min(int(hi[1]), fh)
        if x1 - x0 < 4 or y1 - y0 < 4:
            return None
        w, h = x1 - x0, y1 - y0
        texture = self._texture_for(track, frame, lm, shaped)
        origin = np.array([x0, y0], np.float32)
        dst = shaped[:, :2] - origin
        include = ~self._mouth if self.mask_config.keep_mouth else None
        order, _ = raster.draw_order(dst, shaped[:, 2], self.face.triangles, self._uv_sign, include)
        mx, my, _ = raster.rasterise(dst, self._uv_px, self.face.triangles, (w, h), order)
        level, texture = _mip(track, texture, self.size / face_w)
        if level:
            mx *= np.float32(0.5**level)
            my *= np.float32(0.5**level)
        rendered = u8(
            cv2.remap(texture, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
        )
        crop = u8(cv2.cvtColor(rendered, cv2.COLOR_BGRA2BGR))
        alpha = np.ascontiguousarray(rendered[..., 3])
        # Where nothing was rendered, carry the frame: a soft mask edge then blends frame
        # with frame instead of pulling in black (the "dark rim").
        cv2.copyTo(frame[y0:y1, x0:x1], zero(alpha), crop)
        # mouth and eye cuts follow the LIVE features: that is where the real ones are
        occluded, glasses = None, None
        if self.mask_config.keep_occluders:
            occluded = self._live_occlusion(track, frame, lm)
            if self.mask_config.keep_glasses:
                glasses = self._live_glasses(track, frame, lm)
        mask, mouth = self._mask(alpha, lm[:, :2] - origin, face_w, occluded, glasses)
        if mouth is not None:
            self._recolour_lips(track, frame[y0:y1, x0:x1], crop, alpha, mask, mouth, lm, shaped, origin)
        if self.mask_config.fade_beyond_pose:
            opacity = self._pose_opacity(track)
            if opacity < 1.0:
                mask = u8(cv2.convertScaleAbs(mask, alpha=opacity))
        t = np.array([[1, 0, x0], [0, 1, y0]], np.float32)
        return SwapResult(crop, mask, t, face.track_id)

    def _shaped(self, track: _Track, lm: FloatArray, *, follow: bool = True) -> FloatArray:
        """The live mesh with its inner face moved towards the source's proportions.

        Both shapes are compared in the source face's frame (a 3D similarity fit removes
        pose and size); the offset is taken from the live face's running average, not from
        this frame, so what changes frame to frame (speech, blinks, expressions) stays live.
        The average takes this frame in only when ``follow`` (not during a blink).
        """
        cfg = self.shape_config
        live = lm.astype(np.float64)
        if float(np.ptp(live[:, 0])) < 1 or float(np.ptp(live[:, 1])) < 1:
            return lm  # degenerate: nothing to fit
        scale, r, t = similarity(live, self._source_shape)
        track.pose = pose_angle(r)
        in_source = scale * live @ r.T + t
        if track.mean_shape is None:
            track.mean_shape = in_source
        elif follow:
            track.mean_shape += (in_source - track.mean_shape) / cfg.adapt_frames
        if cfg.strength <= 0:
            return lm
        offset = (self._source_shape - track.mean_shape) * (cfg.strength * self._shape_w)[:, None]
        if not self.mask_config.keep_mouth:  # (kept: the weights leave the lips alone)
            # the lips move up or down together: their opening stays the live one (speech)
            common = float(self._lip_share @ offset[:, 1])
            offset[:, 1] = self._lip_blend * offset[:, 1] + (1.0 - self._lip_blend) * common
        # back to the live frame: only the linear part applies to an offset
        moved = offset @ r / scale
        # no point may be pushed across the live face's edge (nor close to it): in the image,
        # a point moves at most a share of its distance from the nearest outline point
        xy = lm[:, :2] - lm[_OVAL_IDX, :2].mean(axis=0)  # float32, centred: |x - o|^2 expanded
        oval = xy[_OVAL_IDX]
        d2 = (xy * xy).sum(axis=1)[:, None] + (oval * oval).sum(axis=1)[None, :] - 2.0 * (xy @ oval.T)
        edge = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
        length = np.sqrt((moved[:, :2] ** 2).sum(axis=1))
        moved *= np.minimum(1.0, _SHAPE_REACH * edge / np.maximum(length, 1e-9))[:, None]
        return (live + moved).astype(np.float32)

    def _pose_opacity(self, track: _Track) -> float:
        """The track's opacity this frame: towards the target for its pose by :data:`_POSE_RATE`
        (a new face takes it at once)."""
        x = float(np.clip((_POSE_NONE - track.pose) / (_POSE_NONE - _POSE_FULL), 0.0, 1.0))
        target = x * x * (3.0 - 2.0 * x)  # smoothstep
        if track.opacity is None:
            track.opacity = target
        else:
            track.opacity += (target - track.opacity) * _POSE_RATE
        return track.opacity

    def _live_occlusion(self, track: _Track, frame: ImageBGR, lm: FloatArray) -> Mask | None:
        """UV map (:data:`_OCCLUSION_SIZE`, uint8 0/255) of what is in front of the live face
        on this frame, or None when nothing is; updates the track's reference.

        Runs every frame: the work beyond unwrapping and comparing (how squarely each texel
        is seen, the persistence and size tests) is done only when some texel changed.
        """
        k = _OCCLUSION_SIZE
        fh, fw = frame.shape[:2]
        mx, my, _ = raster.rasterise(self._uv_occ, lm[:, :2], self.face.triangles, (k, k))
        inside = (mx >= 0) & (my >= 0) & (mx <= fw - 1) & (my <= fh - 1)
        if np.count_nonzero(inside) < k * k // 8:
            return None
        live = to_lab(u8(cv2.remap(frame, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)))
        if track.reference is None:
            track.reference = live
            track.changed = None
            return None
        # (Colour alone cannot tell a microphone from a beard, which must not show through:
        # only a change from the face's usual look counts.) Unlike the face's usual look
        # there: a hand, a strand, anything that came in front.
        d = live - track.reference
        occ = (np.einsum("ijk,ijk->ij", d, d) > _OCCLUSION_DE**2) & inside & self._occ_judged
        if occ.any():
            # Only where the face is seen squarely: where it turns away, the ear, the collar
            # and the background come and go at the mesh's edge.
            facing = self._vertex_field(facing_ratio(lm, self.face.triangles, self._uv_sign))
            occ &= self._interpolate(facing, None, k)[0] > _OCCLUSION_FACING
        # Only what stays: a change on one frame alone (a blink, a twitch) is the face's own.
        before = track.changed
        track.changed = occ
        if before is not None and occ.any() and before.any():
            occ = occ & (cv2.dilate(before.astype(np.uint8), _disc(3)) > 0)
            # ... and is a sizeable patch (a hand, a microphone, a strand's length): specks
            # are the face's own (a shadow moving, the mesh's jitter).
            # Pieces a texel or two apart are one thing (a microphone's tip beyond the band
            # round the lips that is not judged): counted together.
            _, labels = cv2.connectedComponents(u8(cv2.dilate(occ.astype(np.uint8), _disc(3))))
            texels = np.bincount(labels[occ], minlength=int(labels.max()) + 1)
            big = np.flatnonzero(texels >= _OCCLUSION_MIN_TEXELS)
            occ &= np.isin(labels, big[big > 0])
        else:
            occ = np.zeros_like(occ)
        # the reference follows the face where it is seen and nothing is in front
        follow = inside & ~(cv2.dilate(occ.astype(np.uint8), _disc(7)) > 0) if occ.any() else inside
        cv2.accumulateWeighted(live, track.reference, _REFERENCE_RATE, mask=follow.astype(np.uint8))
        if not occ.any():
            return None
        return above(occ.astype(np.uint8), 0)

    def _live_glasses(self, track: _Track, frame: ImageBGR, lm: FloatArray) -> Mask | None:
        """The live face's glasses frame as a UV map (:data:`_GLASSES_LIVE_SIZE`, uint8 0/255),
        or None when it wears none.

        Glasses worn from the first frame are part of the face's usual look, so
        :meth:`_live_occlusion` never sees them. They are looked for on a track's first frame and
        then every :data:`_GLASSES_EVERY` frames (the frame sits still on the face: in UV space
        the cached map follows the head); in between this costs nothing.
        """
        track.glasses_due -= 1
        if track.glasses_due > 0:
            return track.glasses
        track.glasses_due = _GLASSES_EVERY
        k = _GLASSES_LIVE_SIZE
        fh, fw = frame.shape[:2]
        mx, my, _ = raster.rasterise(self._uv_glasses, lm[:, :2], self.face.triangles, (k, k))
        inside = (mx >= 0) & (my >= 0) & (mx <= fw - 1) & (my <= fh - 1)
        if np.count_nonzero(inside) < k * k // 8:
            track.glasses = None
            return None
        live = u8(cv2.remap(frame, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
        found = find_glasses(to_lab(live)[..., 0], inside, self._glasses_live_layout)
        track.glasses = u8(found.mask.astype(np.uint8) * 255) if found.found else None
        return track.glasses

    def _mask(
        self,
        alpha: Mask,
        dst: FloatArray,
        face_w: float,
        occluded: Mask | None = None,
        glasses: Mask | None = None,
    ) -> tuple[Mask, Mask | None]:
        """Soft mask from the rendered coverage × hair trim, minus mouth and eyes, feathered,
        minus what is in front of the live face (``occluded``: a UV map, placed with the live
        mesh ``dst``) and the live glasses frame (``glasses``: a UV map, :data:`_GLASSES_LIVE_SIZE`).

        Built at about :data:`_MASK_WIDTH` pixels across the face and upsampled. Returns the
        mask and, with ``keep_mouth``, what the mouth's hole took out of it (0..255, less what
        is in front of the face; None without ``keep_mouth``).
        """
        cfg = self.mask_config
        h, w = alpha.shape
        s = min(1.0, _MASK_WIDTH / face_w)
        sw, sh = max(1, round(w * s)), max(1, round(h * s))
        # INTER_LINEAR, not INTER_AREA: 25x faster at non-integer factors, and this edge is
        # blurred below anyway.
        small = u8(cv2.resize(alpha, (sw, sh), interpolation=cv2.INTER_LINEAR))
        # Fill interior holes (nostril slivers, the undrawn mouth) so only the outer
        # silhouette is feathered; mouth and eyes get their own soft cuts below.
        solid = np.zeros_like(small)
        contours, _ = cv2.findContours(above(small, 8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(solid, contours, -1, 255, cv2.FILLED)
        fw_small = face_w * s
        # Erode by the blur's full reach (3 sigma) plus a pixel for the upsampling, so the
        # feathered edge is 0 at the silhouette: no unrendered pixel can bleed in as a rim.
        blur = cfg.feather * fw_small
        erode = cfg.erode * fw_small + blur + 1
        solid = u8(cv2.erode(solid, _disc(2 * erode + 1)))
        if blur >= 0.5:
            solid = u8(cv2.GaussianBlur(solid, (0, 0), blur / 3))
        # Inside the silhouette the rendered alpha carries the hair trim; holes count as 255.
        inner = small.copy()
        inner[(small == 0) & (solid > 0)] = 255
        m = u8(cv2.min(solid, inner))
        pts = dst * s
        mouth = None
        if cfg.keep_mouth:
            before = m
            m = _cut(m, [pts[list(LIPS_INNER)]], grow=_MOUTH_GROW * fw_small, soft=_MOUTH_SOFT * fw_small)
            mouth = u8(cv2.subtract(before, m))
        if cfg.keep_eyes:
            m = _cut(m, [pts[list(RIGHT_EYE)], pts[list(LEFT_EYE)]], grow=0.005 * fw_small, soft=0.02 * fw_small)
        if glasses is not None:
            # Exactly the frame, grown by two pixels (the upsampling's ramp) with a one-pixel
            # soft edge: its pixels stay live; the eyes behind the lenses and the skin around
            # the frame are swapped.
            gx, gy, _ = raster.rasterise(pts, self._uv_glasses, self.face.triangles, (sw, sh))
            frame = cv2.remap(glasses, gx, gy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            frame = cv2.dilate(above(u8(frame), 0), _disc(5))
            cut = cv2.blur(frame, (3, 3))
            m = u8(cv2.subtract(m, cut))
            if mouth is not None:
                mouth = u8(cv2.subtract(mouth, cut))
        if occluded is not None:
            mxs, mys, _ = raster.rasterise(pts, self._uv_occ, self.face.triangles, (sw, sh))
            hole = cv2.remap(occluded, mxs, mys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            # grown and softened, so the occluder's edge and its anti-aliased rim stay live
            hole = cv2.dilate(hole, _disc(0.04 * fw_small))
            sigma = max(0.3, 0.01 * fw_small)
            cut = cv2.GaussianBlur(cv2.dilate(hole, _disc(6 * sigma + 1)), (0, 0), sigma)
            m = u8(cv2.subtract(m, cut))
            if mouth is not None:
                mouth = u8(cv2.subtract(mouth, cut))
        if (sw, sh) != (w, h):
            m = u8(cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR))
            if mouth is not None:
                mouth = u8(cv2.resize(mouth, (w, h), interpolation=cv2.INTER_LINEAR))
        return m, mouth

    def _recolour_lips(
        self,
        track: _Track,
        live: ImageBGR,
        crop: ImageBGR,
        alpha: Mask,
        mask: Mask,
        mouth: Mask,
        lm: FloatArray,
        shaped: FloatArray,
        origin: npt.NDArray[np.float32],
    ) -> None:
        """Give the live lips that the mouth's hole shows the source's lip colour, in ``crop``
        and ``mask`` (see :data:`_LIP_CHROMA`); the live mouth's shape, teeth and interior stay.

        ``live`` is the frame under the crop; ``mouth`` is what the hole took out of ``mask``.
        Where it did and a pixel is recoloured, the crop takes the recoloured live pixel in the
        hole's share and the mask grows by that share; everything else stays bit-exact. Both
        arrays are this frame's own (made by :meth:`swap`) and are changed in place.
        """
        h, w = mask.shape
        x, y, bw, bh = cv2.boundingRect(f32(lm[_LIPS_OUTER_IDX, :2] - origin))
        bx0, by0, bx1, by1 = max(x - 4, 0), max(y - 4, 0), min(x + bw + 4, w), min(y + bh + 4, h)
        if bx1 - bx0 < 4 or by1 - by0 < 4 or not mouth[by0:by1, bx0:bx1].any():
            return
        sub_live, sub_crop = live[by0:by1, bx0:bx1], crop[by0:by1, bx0:bx1]
        bw, bh = bx1 - bx0, by1 - by0
        # What is recoloured is worked out at most _LIP_WIDTH pixels across the lips; the colour
        # map runs on the full-size live pixels (their texture stays).
        sc = min(1.0, _LIP_WIDTH / bw)
        sw_, sh_ = max(1, round(bw * sc)), max(1, round(bh * sc))
        small_live = u8(cv2.resize(sub_live, (sw_, sh_), interpolation=cv2.INTER_LINEAR))
        shape = (sh_, sw_)
        off = np.array([bx0, by0], np.float32)
        live_lab = to_lab(small_live)
        live_outer, live_inner = _lip_masks(lm[:, :2] - origin, off, sc, shape)
        border_px = max(1, round(_LIP_BORDER * sc))
        grown = cv2.dilate(live_outer, _disc(2 * border_px + 1))
        if track.lip_due <= 0 or track.lip_map is None:
            # Measured every _LIP_EVERY frames (the map moves at _LIP_RATE anyway).
            small_crop = u8(cv2.resize(sub_crop, (sw_, sh_), interpolation=cv2.INTER_LINEAR))
            small_alpha = u8(cv2.resize(alpha[by0:by1, bx0:bx1], (sw_, sh_), interpolation=cv2.INTER_NEAREST))
            src_ring = _lip_ring(*_lip_masks(shaped[:, :2] - origin, off, sc, shape)) & (small_alpha == 255)
            self._measure_lips(track, small_live, small_crop, live_lab, _lip_ring(live_outer, live_inner), src_ring)
        track.lip_due -= 1
        if track.lip_map is None or track.lip_live is None or track.lip_floor is None:
            return
        lip = track.lip_live
        # The live lips only: not the skin the hole's soft edge reaches, nor the opening itself
        # (teeth, tongue: the live mouth shows as it is), their outlines softened, and the
        # lipstick reaching a pixel or two past the mesh's lip contour ...
        margin = _LIP_OPENING_MARGIN * float(np.ptp(lm[:, 0])) * sc
        opening = cv2.erode(live_inner, _disc(2 * margin + 1)) if margin >= 0.5 else live_inner
        lips_only = cv2.subtract(live_outer, opening)
        like = f32(cv2.GaussianBlur(lips_only, (0, 0), max(0.5, sc))) * np.float32(1 / 255)
        # ... where they look like lip: chroma from _LIP_CHROMA[0] to [1] of the live lips' (past
        # the contour from _LIP_CHROMA[1] on: skin is there), L* within the lips' range
        lip_chroma = max(float(np.hypot(lip[1], lip[2])), 1.0)
        lo_c = np.where(lips_only > 0, np.float32(_LIP_CHROMA[0] * lip_chroma), np.float32(_LIP_CHROMA[1] * lip_chroma))
        L, la, lb = cv2.split(live_lab)
        chroma = cv2.magnitude(la, lb)
        like *= np.clip((chroma - lo_c) * np.float32(1 / ((_LIP_CHROMA[1] - _LIP_CHROMA[0]) * lip_chroma)), 0.0, 1.0)
        inside = np.minimum(L - np.float32(lip[0] - _LIP_DARK), np.float32(lip[0] + _LIP_BRIGHT + 10.0) - L)
        like *= np.clip(inside * np.float32(0.1), 0.0, 1.0) * (cv2.subtract(grown, opening) > 0)
        # The map is fitted, not exact: where it would still make a pixel greener or bluer than
        # both the live pixel and the source's lips (a purple lip turned blue), that pixel stays.
        _, ma, mb = cv2.split(to_lab(u8(cv2.transform(small_live, track.lip_map))))
        fa, fb = (float(v) for v in track.lip_floor)
        below_a = np.minimum(la + np.float32(0.5), np.float32(fa)) - ma
        below = np.maximum(below_a, np.minimum(lb + np.float32(0.5), np.float32(fb)) - mb)
        like *= np.clip(np.float32(1) - below, 0.0, 1.0)
        weight = f32(cv2.resize(like, (bw, bh), interpolation=cv2.INTER_LINEAR)) if sc < 1.0 else like
        # Only where something is recoloured (a box within the lips' box).
        c0, r0, cw, rh = cv2.boundingRect(above(u8(cv2.convertScaleAbs(weight, alpha=255.0)), 0))
        if cw == 0 or rh == 0:
            return
        weight = weight[r0 : r0 + rh, c0 : c0 + cw]
        y0_, y1_, x0_, x1_ = by0 + r0, by0 + r0 + rh, bx0 + c0, bx0 + c0 + cw
        if sc < 1.0:  # the opening, at full size: not one of its pixels changes
            core = np.zeros((rh, cw), np.uint8)
            pts = (lm[_LIPS_INNER_IDX, :2] - origin - np.array([x0_, y0_], np.float32)) * 16
            cv2.fillPoly(core, [pts.astype(np.int32)], 255, cv2.LINE_8, 4)
            full_margin = margin / sc
            if full_margin >= 0.5:
                core = u8(cv2.erode(core, _disc(2 * full_margin + 1)))
            weight[core > 0] = 0
        # Contiguous copies of these small boxes (one compiled version of the kernel serves all);
        # crop and mask are this frame's own arrays (from swap()), changed only where weight > 0.
        box = np.s_[y0_:y1_, x0_:x1_]
        crop_box, mask_box = np.ascontiguousarray(crop[box]), np.ascontiguousarray(mask[box])
        mouth_box, live_box = np.ascontiguousarray(mouth[box]), np.ascontiguousarray(live[box])
        lip_map = np.ascontiguousarray(track.lip_map, np.float32)
        _blend_lips(crop_box, mask_box, mouth_box, np.ascontiguousarray(weight), live_box, lip_map)
        crop[box], mask[box] = crop_box, mask_box

    def _measure_lips(
        self,
        track: _Track,
        small_live: ImageBGR,
        small_crop: ImageBGR,
        live_lab: npt.NDArray[np.float32],
        live_ring: npt.NDArray[np.bool_],
        src_ring: npt.NDArray[np.bool_],
    ) -> None:
        """The colour map from the live lips to the source's (see :meth:`_recolour_lips`): the
        rendered source lips' median L*a*b* minus the live lips' (each over its own ring between
        the outer and inner contours), guarded, fitted as one affine BGR map over the live
        lips' pixels (per frame only ``cv2.transform`` runs at full size). All images are the
        lips' box at the working size."""
        if min(int(live_ring.sum()), int(src_ring.sum())) < _LIP_MIN_PIXELS:
            return
        track.lip_due = _LIP_EVERY
        src_px, live_px = _pixels(to_lab(small_crop), src_ring), _pixels(live_lab, live_ring)
        live_med = _ranks(live_px, (0.5,))[0]
        q = _ranks(src_px, (0.05, 0.5, 0.95))
        out = live_px + f32(q[1] - live_med)
        # no hue that neither the live pixel nor the source's lips have (lips are never green or
        # blue: a blue lip line), half a unit over the live value so that 8-bit rounding does not
        # tip a purple pixel into blue; nor lighter than both (a highlight pushed past white
        # loses its red: pink turns blue)
        floor = np.maximum(q[0, 1:], 0.0).astype(np.float32)
        out[:, 1:] = np.maximum(out[:, 1:], np.minimum(live_px[:, 1:] + np.float32(0.5), floor))
        out[:, 0] = np.minimum(out[:, 0], np.maximum(live_px[:, 0], np.float32(q[2, 0])))
        x = np.hstack([_pixels(small_live.astype(np.float32), live_ring), np.ones((len(out), 1), np.float32)])
        y = from_lab(f32(out[:, None, :]))[:, 0, :].astype(np.float32)
        # least squares through the normal equations (4 x 4, in float64); the small ridge, relative
        # to the Gram matrix's size, keeps the solve defined for lips of one flat colour (a blown
        # out or blank frame: a fixed ridge of 1 was lost in float32 rounding, a singular matrix)
        x64 = x.astype(np.float64)
        gram = x64.T @ x64
        ridge = 1e-6 * float(np.trace(gram)) + 1e-3
        fit = np.linalg.solve(gram + ridge * np.eye(4), x64.T @ y.astype(np.float64)).T.astype(np.float32)
        if track.lip_map is None or track.lip_live is None or track.lip_floor is None:
            track.lip_map, track.lip_live, track.lip_floor = fit, live_med, floor
        else:
            track.lip_map = f32(track.lip_map + _LIP_RATE * (fit - track.lip_map))
            track.lip_live = f32(track.lip_live + _LIP_RATE * (live_med - track.lip_live))
            track.lip_floor = f32(track.lip_floor + _LIP_RATE * (floor - track.lip_floor))

    def _track(self, track_id: int) -> _Track:
        """A face's state, created on first sight; marks it the most recently swapped."""
        track = self._tracks.pop(track_id, None)
        if track is None:
            track = _Track(self._base_texture)
            if len(self._tracks) >= _MAX_TRACKS:  # forget the least recently swapped face
                self._tracks.pop(next(iter(self._tracks)))
        self._tracks[track_id] = track  # (re)insert: dict order = recency
        return track

    def _texture_for(
        self, track: _Track, frame: ImageBGR, lm: FloatArray, shaped: FloatArray | None = None
    ) -> npt.NDArray[np.uint8]:
        """The colour-corrected BGRA texture of a track, re-estimated every ``interval`` frames.

        ``shaped``: the mesh the texture is rendered on (where each texel lands in the frame),
        for the hue guard; the live mesh when not given.
        """
        cfg = self.color_config
        if cfg.mode == "none" or cfg.strength <= 0:
            track.texture = self._base_texture
            return track.texture
        # Until the live skin has been measured once (cheeks out of view), try every frame.
        first = track.stats is None
        band = -(-self.size // self._build_frames())
        # A re-estimate is spread over frames, each with one heavy step: the live skin's
        # measurement; the shading field; the hue guard's look at where the texels land with the
        # first band of the build; the other bands. (One frame that ran all of them took 2-3x
        # the median swap's time.) A new face gets everything at once.
        spread = cfg.interval > self._build_frames() and not first
        shading_later = spread and cfg.interval > self._build_frames() + 1
        if track.age % cfg.interval == 0 or first:
            job = self._estimate(track, frame, lm, shaped, guard=not spread, shading=not shading_later)
            if job is not None:
                track.pending = job
                if not spread:
                    self._build(track, job, self.size if first else band)
        elif track.pending is not None:
            job = track.pending
            if job.view is not None:
                self._update_shading(track, job)
            else:
                if job.guard_due:
                    self._update_guard(track, frame, lm, shaped, None)
                    job.floor, job.guard_due = self._floor(track), False
                self._build(track, job, band)
        track.age += 1
        return self._faded(track, min(cfg.interval - self._build_frames(), _FADE_FRAMES))

    def _build_frames(self) -> int:
        return max(1, min(_BUILD_FRAMES, self.color_config.interval - 1))

    def _estimate(
        self,
        track: _Track,
        frame: ImageBGR,
        lm: FloatArray,
        shaped: FloatArray | None,
        *,
        guard: bool = True,
        shading: bool = True,
    ) -> _Rebuild | None:
        """Measure the live skin, update the track's statistics, shading (with ``shading``) and
        hue guard (with ``guard``), and return a rebuild of its texture to run (None without
        statistics). Without ``shading`` the rebuild carries this frame's view for the next
        frame to work the shading out from; without ``guard`` the build's first frame works out
        its floor."""
        cfg = self.color_config
        view = self._live_view(frame, lm)
        live = view.stats if view is not None else live_skin_stats(frame, lm)
        if live is not None:
            track.stats = live if track.stats is None else track.stats.mix(live, _STATS_MIX)
        if track.stats is None:
            return None
        m = transfer_matrix(
            cfg.mode, self.source_stats, track.stats, cfg.strength, max_chroma_gain=_CHROMA_GAIN, lightness="ratio"
        )
        m32 = m.astype(np.float32)
        out = np.empty((self.size, self.size, 4), np.uint8)
        job = _Rebuild(m32, None, None, out, guard_due=not guard, skin_lightness=float(track.stats.mean[0]))
        if view is not None:
            job.view = view
            if shading:
                self._update_shading(track, job)
            if guard:
                self._update_guard(track, frame, lm, shaped, view)
        if job.view is None:
            job.shading = self._scaled_shading(track)
        if guard:
            job.floor = self._floor(track)
        return job

    def _update_shading(self, track: _Track, job: _Rebuild) -> None:
        """Work out the shading field from the view the rebuild carries, mix it into the
        track's, and give the rebuild the result."""
        assert job.view is not None
        # The map is affine, so shrinking commutes with it: use the pre-shrunk texture.
        shading = self._shading(job.view, f32(cv2.transform(self._texture_lab_small, job.matrix)))
        track.shading = _mixed(track.shading, shading)
        job.view = None
        job.shading = self._scaled_shading(track)

    def _scaled_shading(self, track: _Track) -> npt.NDArray[np.float32] | None:
        return None if track.shading is None else track.shading * np.float32(self.color_config.strength)

    def _update_guard(
        self, track: _Track, frame: ImageBGR, lm: FloatArray, shaped: FloatArray | None, view: _LiveView | None
    ) -> None:
        """Update the track's hue guard: the live a*, b* range near where each texel lands
        (``shaped``; ``view``, this frame's measured view of ``lm``, serves when they are one)."""
        if view is not None and (shaped is None or shaped is lm):
            landing: _LiveView | None = view
        else:
            landing = self._live_view(frame, lm if shaped is None else shaped, measure=False) or view
        if landing is None:
            return
        track.guard = _mixed(track.guard, _live_range(landing.lab[..., 1:], landing.weight > 0.5))

    @staticmethod
    def _floor(track: _Track) -> npt.NDArray[np.float32] | None:
        """The hue guard as a per-texel floor: each texel's a*, b* may not fall below both the
        source's own value there and the live face's minimum nearby: no texel turns greener or
        bluer than either face is there (blue brows, grey-blue blotches from an overflowing
        transfer). No upper bound: clamping warm overshoots makes grey patches."""
        if track.guard is None:
            return None
        n = track.guard.shape[0]
        floor = np.empty((n, n, 3), np.float32)
        floor[..., 0] = _GUARD_OFF  # L* is not guarded: min(off, -off) = -off, max(L*, -off) = L*
        floor[..., 1:] = track.guard[..., :2]
        return floor

    def _build(self, track: _Track, job: _Rebuild, rows: int) -> None:
        """Build the next ``rows`` rows of a rebuild; the finished texture starts cross-fading in.

        Per texel: the global map, the shading field, the eyes' own colour, the hue guard.
        """
        r0, r1 = job.row, min(job.row + rows, self.size)
        lab = f32(cv2.transform(self._texture_lab[r0:r1], job.matrix))
        gain = float(job.matrix[0, 0])
        if gain > 1.0:  # the skin's contrast is matched; features darker than skin are not deepened
            lab[..., 0] += np.float32(1.0 - gain) * self._dark_excess[r0:r1]
        if job.shading is not None:
            cv2.add(lab, _band_resize(job.shading, self.size, r0, r1), dst=lab)
        # Eyes (and a beard) take the live lighting but keep their own colour: a skin-to-skin
        # map turns eye whites orange.
        for (y0, y1, x0, x1), wgt in self._own_colour:
            ya, yb = max(y0, r0), min(y1, r1)
            if ya < yb:
                orig = self._texture_lab[ya:yb, x0:x1]
                band = lab[ya - r0 : yb - r0, x0:x1]
                band[:] = orig + (band - orig) * wgt[ya - y0 : yb - y0]
        # dark make-up around the eyes: colour in proportion to its lightness (see _DARK_CHROMA)
        if self._dark_box is not None:
            y0, y1, x0, x1 = self._dark_box
            ya, yb = max(y0, r0), min(y1, r1)
            if ya < yb:
                band = lab[ya - r0 : yb - r0, x0:x1]
                share = np.clip((band[..., 0] + 16.0) * np.float32(1.0 / (job.skin_lightness + 16.0)), 0.0, 1.0)
                band[..., 1:] *= (1.0 - self._dark_depth[ya:yb, x0:x1] * (1.0 - share))[..., None]
        if job.floor is not None:
            floor = _band_resize(job.floor, self.size, r0, r1)
            cv2.min(floor, self._guard_source[r0:r1], dst=floor)
            cv2.max(lab, floor, dst=lab)
        job.out[r0:r1] = _with_alpha(from_lab(lab), self.texture_alpha[r0:r1])
        job.row = r1
        if r1 < self.size:
            return
        # Cross-fade from what was shown over the next frames: a re-estimate that switches
        # the colour at once is a visible step (flicker every interval).
        track.fade_from = track.shown
        track.fade_step = 0
        track.texture = job.out
        track.pending = None

    def _faded(self, track: _Track, frames: int) -> npt.NDArray[np.uint8]:
        """The texture to show this frame: part way from the previous one to the current."""
        if track.fade_from is None or frames <= 1:
            track.shown = track.texture
            return track.texture
        track.fade_step += 1  # frames since the new texture was finished, 1 .. frames
        if track.fade_step >= frames:
            track.fade_from = None
            track.shown = track.texture
            return track.texture
        t = track.fade_step / frames
        track.fade_t = t
        shown = u8(cv2.addWeighted(track.fade_from, 1.0 - t, track.texture, t, 0.0))
        track.shown = shown
        return shown

    def _live_view(self, frame: ImageBGR, lm: FloatArray, *, measure: bool = True) -> _LiveView | None:
        """The live face unwrapped into a small UV image, how well each texel is seen, which
        texels are skin, and the skin's colour statistics.

        Skin: within :data:`_SKIN_DISTANCE` robust deviations of the live cheeks' and
        glabella's own median (beard, stubble, glasses frames, hair strands and shadows
        under them are not), so neither the global map nor the shading field is pulled
        towards them. Without ``measure``, only the image and how well it is seen (no skin,
        no statistics).
        """
        n = _SHADING_SIZE
        fh, fw = frame.shape[:2]
        mx, my, _ = raster.rasterise(self._uv_small, lm[:, :2], self.face.triangles, (n, n))
        inside = (mx >= 0) & (my >= 0) & (mx <= fw - 1) & (my <= fh - 1)
        if inside.sum() < n * n // 8:
            return None
        lab = to_lab(u8(cv2.remap(frame, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)))
        normals = raster.triangle_normals(lm, self.face.triangles, self._uv_sign)
        facing = self._vertex_field(normals[:, 2])
        # The live image is real even where the face turns away (unlike a smear of a few
        # source pixels): only the most oblique rim, where background leaks in, is left out.
        seen = np.clip(
            (self._interpolate(facing, None, n)[0] - _LIVE_FACING_LO) / (_LIVE_FACING_HI - _LIVE_FACING_LO), 0, 1
        )
        weight = (seen * inside).astype(np.float32)
        if not measure:  # the image and how well it is seen only
            return _LiveView(lab, weight, np.ones_like(weight), None)
        patch = self._stat_patches_small & (weight > 0.5)
        seed = self._seed_patches_small & (weight > 0.5)
        if patch.sum() < 16:
            return None
        skin = _live_skin(lab, _dominant(_pixels(lab, seed)))
        stats = robust_lab_stats(_pixels(lab, patch & skin)) if (patch & skin).sum() >= 16 else None
        # how many frame pixels each texel covers, relative to the seen face's mean (see _DENSITY_POWER)
        area = np.abs(raster.signed_areas(lm[:, :2], self.face.triangles)) / self._uv_area
        density = np.maximum(self._interpolate(self._vertex_field(area), None, n)[0], 0.0)
        density /= max(float(density[weight > 0.5].mean()), 1e-9)
        return _LiveView(
            lab, weight, skin.astype(np.float32), stats, self._normals(normals, n // 2), f32(density**_DENSITY_POWER)
        )

    def _normals(self, per_tri: npt.NDArray[np.float64], n: int) -> npt.NDArray[np.float32]:
        """``(n, n, 3)`` UV image of the surface normals from the triangles' unit normals (each
        vertex the plain mean of its triangles', not area-weighted)."""
        vn = np.stack([self._vertex_field(per_tri[:, k]) for k in range(3)], axis=1)
        xy = self._interpolate(vn[:, 0], vn[:, 1], n)
        z = self._interpolate(vn[:, 2], None, n)[0]
        out = np.stack([xy[0], xy[1], z], axis=-1)
        out /= np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-6)
        return f32(out)

    def _shading(self, view: _LiveView, src: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """UV-space field (L*a*b* offsets) that gives the texture the live face's local means.

        Both faces' skin (features, live non-skin and poorly seen parts weighted out) is
        low-passed with a normalised Gaussian and the difference is returned. ``src`` is the
        globally colour-transferred texture at :data:`_SHADING_SIZE`.
        """
        # a measured view (_live_view with measure) has its normals and density
        assert view.normals is not None and view.density is not None
        live_w = view.weight * view.skin * view.density  # what a viewer sees of the face, as it is seen
        diff = view.lab - src
        w_broad = self._shading_weights[0] * live_w
        w_close = self._shading_weights[1] * live_w
        weighted = diff * w_broad[..., None]
        # The source's own skin follows the lighting (at the inner face only its broad
        # gradients: the shading around eyes, nose and mouth is identity); painted-over skin
        # has no identity to keep and follows the live skin closely.
        inner = self._inner_small[..., None]
        fit = _lighting_fit(diff, w_broad, view.normals)
        outer = fit + _normalised_blur(weighted - fit * w_broad[..., None], w_broad, _SHADING_SIGMA)
        own = outer * (1 - inner) + _normalised_blur(weighted, w_broad, _SHADING_SIGMA_INNER) * inner
        close = _normalised_blur(diff * w_close[..., None], w_close, _SHADING_SIGMA_PAINTED)
        t = self._trusted_small[..., None]
        field = own * t + close * (1 - t)
        return np.asarray(np.clip(field, -_SHADING_MAX, _SHADING_MAX), np.float32)


def _mip(track: _Track, texture: npt.NDArray[np.uint8], texels_per_pixel: float) -> tuple[int, npt.NDArray[np.uint8]]:
    """``texture``'s pyramid level for this minification (0 = itself) and that level's image.

    Levels are kept on the track for as long as their texture is the same array; while a colour
    re-estimate fades in, the shown blend is made from the two textures' levels (blending
    commutes with the pyramid), so no frame pays for a full-size pyramid step.
    """
    level = int(np.clip(np.floor(np.log2(max(texels_per_pixel, 1.0))), 0, _MIP_LEVELS))
    if level == 0:
        return 0, texture
    if track.fade_from is not None and texture is track.shown and texture is not track.texture:
        a, b = _level(track, track.fade_from, level), _level(track, track.texture, level)
        return level, u8(cv2.addWeighted(a, 1.0 - track.fade_t, b, track.fade_t, 0.0))
    return level, _level(track, texture, level)


def _level(track: _Track, texture: npt.NDArray[np.uint8], level: int) -> npt.NDArray[np.uint8]:
    """``texture`` reduced ``level`` times by :func:`cv2.pyrDown`, cached on the track (two kept)."""
    for src, lv, image in track.mips:
        if src is texture and lv == level:
            return image
    out = texture
    for _ in range(level):
        out = u8(cv2.pyrDown(out))
    track.mips = [*track.mips[-1:], (texture, level, out)]
    return out


def pose_angle(rotation: npt.NDArray[np.float64]) -> float:
    """Degrees between the two faces' view directions (yaw and pitch, not roll) for the rotation
    that maps one face's mesh onto the other's."""
    return float(np.degrees(np.arccos(np.clip(abs(float(rotation[2, 2])), 0.0, 1.0))))


def facing_ratio(
    landmarks: npt.ArrayLike, triangles: npt.NDArray[np.int32], uv_sign: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Per triangle: projected area / true 3D area, signed (1 = faces the camera squarely).

    The mesh's z is in the same pixel units as x and y, so the ratio is the cosine between
    the triangle's normal and the viewing direction (the z of :func:`raster.triangle_normals`);
    negative = facing away.
    """
    return raster.triangle_normals(landmarks, triangles, uv_sign)[:, 2]


def _mixed(old: npt.NDArray[np.float32] | None, new: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """A track's running field (shading, hue guard) with a new measurement mixed in."""
    return new if old is None else (1 - _STATS_MIX) * old + _STATS_MIX * new


def _band_resize(small: npt.NDArray[np.float32], size: int, r0: int, r1: int) -> npt.NDArray[np.float32]:
    """Rows ``r0:r1`` of ``small`` (square) resized to ``size`` (bilinear), computed from the
    few source rows they need: equal to ``cv2.resize(small, (size, size))[r0:r1]`` when size is
    a multiple of small's (the same sample positions and weights)."""
    n = small.shape[0]
    if size % n:
        return f32(cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR))[r0:r1]
    k = size // n
    s0, s1 = max(0, r0 // k - 1), min(n, -(-r1 // k) + 1)
    up = f32(cv2.resize(small[s0:s1], (size, (s1 - s0) * k), interpolation=cv2.INTER_LINEAR))
    return up[r0 - s0 * k : r1 - s0 * k]


def _live_range(ab: npt.NDArray[np.float32], seen: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32]:
    """``(n, n, 4)``: local minima of a*, b* then local maxima, over ``seen`` texels."""
    if np.count_nonzero(seen) < 16:
        return np.concatenate([np.full_like(ab, -128.0), np.full_like(ab, 127.0)], axis=2)
    ab = np.ascontiguousarray(ab)
    lo_all, hi_all = np.percentile(_pixels(ab, seen), [1, 99], axis=0).astype(np.float32)
    k = _disc(_GUARD_WINDOW * ab.shape[0])
    mask = seen.astype(np.uint8)

    # (OpenCV's masked copies: numpy's where on these small 2-channel images costs more)
    def masked(
        src: npt.NDArray[np.float32], m: npt.NDArray[np.uint8], fill: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        out = np.tile(fill, (*src.shape[:2], 1))
        cv2.copyTo(src, m, out)
        return out

    lo = f32(cv2.erode(masked(ab, mask, hi_all), k))
    hi = f32(cv2.dilate(masked(ab, mask, lo_all), k))
    # where no seen texel is near, the face's overall range
    near = u8(cv2.dilate(mask, k))
    return f32(cv2.merge([masked(lo, near, lo_all), masked(hi, near, hi_all)]))


def live_skin_stats(frame: ImageBGR, landmarks: FloatArray) -> LabStats | None:
    """L*a*b* statistics of the live face's cheek skin (no eyes, brows or lips)."""
    polys = [landmarks[list(RIGHT_CHEEK), :2], landmarks[list(LEFT_CHEEK), :2]]
    allp = np.concatenate(polys)
    fh, fw = frame.shape[:2]
    x0, y0 = np.maximum(np.floor(allp.min(axis=0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(allp.max(axis=0)).astype(int) + 1, (fw, fh))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    roi = frame[y0:y1, x0:x1]
    polys = [p - (x0, y0) for p in polys]
    # Statistics do not need every pixel of a big face: shrink to about 128 px across.
    s = min(1.0, 128.0 / (x1 - x0))
    if s < 1.0:
        roi = u8(
            cv2.resize(
                roi, (max(2, round(roi.shape[1] * s)), max(2, round(roi.shape[0] * s))), interpolation=cv2.INTER_AREA
            )
        )
        polys = [p * s for p in polys]
    m = _polygon_mask(roi.shape[:2], polys)
    px = roi[m > 0]
    if len(px) < 16:
        return None
    return robust_lab_stats(to_lab(px.reshape(-1, 1, 3)))


def _polygon_mask(hw: tuple[int, ...], polygons: list[npt.NDArray[np.float32]]) -> Mask:
    """uint8 mask of the convex hulls of ``polygons`` (sub-pixel vertices)."""
    m = np.zeros(hw[:2], np.uint8)
    for p in polygons:
        hull = cv2.convexHull(np.round(np.asarray(p) * 16).astype(np.int32))
        cv2.fillConvexPoly(m, hull, 255, cv2.LINE_8, 4)
    return m


def _cut(m: Mask, polygons: list[FloatArray], *, grow: float, soft: float) -> Mask:
    """``m`` with soft-edged holes where ``polygons`` are.

    The hole is fully open over the polygon grown by ``grow`` pixels and fades to nothing
    over the next ``soft`` pixels: what the polygon outlines (the live mouth or eye) shows
    exactly, with a soft margin around it.
    """
    hole = np.zeros_like(m)
    for p in polygons:
        pts = [np.round(p * 16).astype(np.int32)]
        cv2.fillPoly(hole, pts, 255, cv2.LINE_8, 4)
        # A closed mouth or eye is a degenerate polygon: its outline still marks the line.
        cv2.polylines(hole, pts, True, 255, 1, cv2.LINE_8, 4)
    sigma = soft / 3  # the Gaussian reaches about 3 sigma
    reach = grow + 3 * sigma  # the blur must not eat into the polygon itself
    hole = u8(cv2.dilate(hole, _disc(2 * reach + 1)))
    if sigma >= 0.3:
        hole = u8(cv2.GaussianBlur(hole, (0, 0), sigma))
    return u8(cv2.subtract(m, hole))


def _push_pull_fill(image: ImageBGR, valid: npt.NDArray[np.bool_]) -> ImageBGR:
    """Fill pixels where ``valid`` is False with a smooth extrapolation of the valid ones.

    Pull: average the valid pixels down an image pyramid (weighted by validity); push: fill
    each level's holes from the coarser level. Cheap and seamless, unlike nearest-neighbour.
    """
    w = valid.astype(np.float32)
    img = image.astype(np.float32) * w[..., None]
    levels: list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]] = []
    while min(img.shape[:2]) > 4:
        levels.append((img, w))
        img = f32(cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA))
        w = f32(cv2.resize(w, (w.shape[1] // 2, w.shape[0] // 2), interpolation=cv2.INTER_AREA))
    cur = img / np.maximum(w, 1e-6)[..., None]
    # Coarsest cells without any valid pixel take the overall mean (not black).
    total = float(w.sum())
    if total > 0:
        mean = img.reshape(-1, img.shape[2]).sum(axis=0) / total
        cur[w <= 1e-6] = mean
    for lim, lw in reversed(levels):
        up = cv2.resize(cur, (lim.shape[1], lim.shape[0]), interpolation=cv2.INTER_LINEAR)
        lw3 = np.clip(lw, 0.0, 1.0)[..., None]
        own = lim / np.maximum(lw, 1e-6)[..., None]
        cur = own * lw3 + up * (1 - lw3)
    out = u8(cv2.convertScaleAbs(cur))
    out[valid] = image[valid]
    return out


def _skin_distance(
    lab: npt.NDArray[np.float32], samples: npt.NDArray[np.float32], floor: npt.NDArray[np.float32] = _SKIN_MIN_STD
) -> npt.NDArray[np.float32]:
    """Per-pixel distance to a robust skin model (median, MAD) in units of its spread.

    Darker than the skin counts (hair, shadowed background), brighter does not: a forehead
    often shines.
    """
    if len(samples) < 16:
        return np.zeros(lab.shape[:2], np.float32)
    med = medians(samples)
    sd = np.maximum(1.4826 * medians(np.abs(samples - med)), floor)
    d = (lab - med.astype(np.float32)) / sd.astype(np.float32)
    dl = np.minimum(d[..., 0], 0.0)
    return np.asarray(np.sqrt(dl * dl + d[..., 1] ** 2 + d[..., 2] ** 2), np.float32)


def _live_skin(lab: npt.NDArray[np.float32], samples: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    """Texels of the live face that are skin (see :data:`_LIVE_DARKER`)."""
    med = medians(samples)
    sd_l = max(1.4826 * float(medians(np.abs(samples[:, 0] - med[0]))), _LIVE_MIN_STD)
    chroma = np.sqrt(lab[..., 1] ** 2 + lab[..., 2] ** 2)
    skin_chroma = float(medians(np.sqrt(samples[:, 1] ** 2 + samples[:, 2] ** 2)))
    covered = (lab[..., 0] < med[0] - _LIVE_DARKER * sd_l) & (chroma < _LIVE_CHROMA * skin_chroma)
    return ~covered  # type: ignore[no-any-return]


def _dominant(samples: npt.NDArray[np.float32], rounds: int = 3) -> npt.NDArray[np.float32]:
    """The samples of the dominant colour cluster: trimmed to 2 robust deviations around the
    median, a few times. A cheek patch half covered by a beard or a glasses frame has a
    median and spread between skin and beard; trimming converges on the larger of the two."""
    for _ in range(rounds):
        if len(samples) < 32:
            break
        med = medians(samples)
        sd = np.maximum(1.4826 * medians(np.abs(samples - med)), 1.0)
        keep = (np.abs(samples - med) <= 2.0 * sd).all(axis=1)
        if keep.sum() < 16:
            break
        samples = np.compress(keep, samples, axis=0)
    return samples


def _ranks(samples: npt.NDArray[np.float32], quantiles: tuple[float, ...]) -> npt.NDArray[np.float32]:
    """Per column, the samples at these quantiles (nearest rank; one ``np.partition`` call,
    several times cheaper than ``np.percentile`` / ``np.median`` on a few hundred rows)."""
    n = len(samples)
    ks = [min(n - 1, int(q * (n - 1) + 0.5)) for q in quantiles]
    return f32(np.partition(samples, ks, axis=0)[ks])


def _lip_masks(
    points: FloatArray, off: npt.NDArray[np.float32], scale: float, shape: tuple[int, int]
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """The outer and inner lip polygons of mesh ``points`` (less ``off``, times ``scale``),
    filled in an image of ``shape``."""
    outer, inner = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)
    for idx, img in ((_LIPS_OUTER_IDX, outer), (_LIPS_INNER_IDX, inner)):
        cv2.fillPoly(img, [((points[idx] - off) * (scale * 16)).astype(np.int32)], 255, cv2.LINE_8, 4)
    return outer, inner


def _lip_ring(outer: npt.NDArray[np.uint8], inner: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """The lips between the contours, a pixel in from each: the pixels their colour is taken from."""
    return np.asarray((cv2.erode(outer, _disc(3)) > 0) & (cv2.dilate(inner, _disc(3)) == 0))


def _pixels(image: npt.NDArray[np.float32], where: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32]:
    """``image[where]`` as ``(N, channels)`` rows: ``np.compress`` on the flattened image is ~8x
    faster than boolean indexing for these few-channel images."""
    return np.compress(where.ravel(), image.reshape(where.size, -1), axis=0)


def _odd(x: float) -> int:
    """Nearest odd kernel size >= 3."""
    return max(3, int(round(x)) | 1)


def _lighting_fit(
    values: npt.NDArray[np.float32], weight: npt.NDArray[np.float32], normals: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Weighted least-squares fit of ``values`` (``(n, n, c)``) by a lighting model, evaluated
    on every texel: the nine second-order spherical harmonics of the surface normal plus a
    linear ramp in UV (a lamp nearer one side of the face). The model is smooth: it is fitted
    and evaluated at the normals' size (a whole fraction of ``n``) and scaled back up."""
    n, c = values.shape[0], values.shape[2]
    m = normals.shape[0]
    sub = (slice(None, None, n // m), slice(None, None, n // m))
    basis = _lighting_basis(normals)
    w = weight[sub].reshape(-1)
    sel = w > 1e-3
    if np.count_nonzero(sel) < 2 * basis.shape[-1]:  # (a face all but hidden): no lighting to fit
        return np.zeros_like(values)
    phi = basis.reshape(m * m, -1)[sel]
    wphi = phi * w[sel, None]
    lhs = (wphi.T @ phi).astype(np.float64) + _LIGHT_RIDGE * float(w[sel].sum()) * np.eye(phi.shape[1])
    rhs = (wphi.T @ values[sub].reshape(-1, c)[sel]).astype(np.float64)
    coef = np.linalg.solve(lhs, rhs).astype(np.float32)
    fit = (basis.reshape(m * m, -1) @ coef).reshape(m, m, c)
    return f32(cv2.resize(fit, (n, n), interpolation=cv2.INTER_LINEAR))


def _lighting_basis(normals: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """``(n, n, 11)``: the second-order real spherical harmonics of each texel's normal (up to
    constant factors) and its UV coordinates."""
    n = normals.shape[0]
    out = np.empty((n, n, 11), np.float32)
    x, y, z = normals[..., 0], normals[..., 1], normals[..., 2]
    out[..., 0] = 1.0
    out[..., 1:4] = normals
    out[..., 4] = x * y
    out[..., 5] = x * z
    out[..., 6] = y * z
    out[..., 7] = x * x - y * y
    out[..., 8] = 3 * z * z - 1
    ramp = np.linspace(-0.5, 0.5, n, dtype=np.float32)
    out[..., 9] = ramp[None, :]
    out[..., 10] = ramp[:, None]
    return out


def _normalised_blur(
    values: npt.NDArray[np.float32], weight: npt.NDArray[np.float32], sigma: float
) -> npt.NDArray[np.float32]:
    """``blur(values) / (blur(weight) + 0.05)`` with a Gaussian of ``sigma`` x image size.

    The small constant pulls the result towards 0 where there is little data to go by. The
    blur runs on an image shrunk so that sigma is about 3 pixels (the result is smooth, and a
    full-size Gaussian this wide costs milliseconds), then is scaled back up.
    """
    n = values.shape[0]
    work = int(np.clip(round(3.0 / sigma), 8, n))
    if work < n:
        values = f32(cv2.resize(values, (work, work), interpolation=cv2.INTER_AREA))
        weight = f32(cv2.resize(weight, (work, work), interpolation=cv2.INTER_AREA))
    num = cv2.GaussianBlur(values, (0, 0), sigma * work)
    den = cv2.GaussianBlur(weight, (0, 0), sigma * work)
    out = num / (den + 0.05)[..., None]
    if work < n:
        out = cv2.resize(out, (n, n), interpolation=cv2.INTER_LINEAR)
    return out


@njit(cache=True, nogil=True)
def _blend_lips(
    crop: npt.NDArray[np.uint8],
    mask: npt.NDArray[np.uint8],
    mouth: npt.NDArray[np.uint8],
    weight: npt.NDArray[np.float32],
    live: npt.NDArray[np.uint8],
    lip_map: npt.NDArray[np.float32],
) -> None:
    """The recoloured live lips into ``crop`` and ``mask``, in place (one pass; see
    :meth:`PhotoSwapper._recolour_lips`).

    The hole's share of what the live frame shows at a pixel (the rest: the feathered edge,
    occluders) is drawn from the live pixel through ``lip_map`` (an affine BGR map); the mask
    grows by that share only where ``weight`` > 0 (elsewhere the result would be the live frame
    anyway): ``crop' = crop (1 - t) + map(live) t`` with ``t = (mask' - mask) / mask'``. Pixels
    with no weight are not touched.
    """
    h, w = weight.shape
    for i in range(h):
        for j in range(w):
            wt = weight[i, j]
            if wt <= 0:
                continue
            m = np.float32(mask[i, j])
            free = np.float32(255) - m
            share = min(np.float32(mouth[i, j]) / max(free, np.float32(1)), np.float32(1)) * wt
            grow = free * share
            new_m = m + grow
            t = grow / max(new_m, np.float32(1))
            b, g, r = np.float32(live[i, j, 0]), np.float32(live[i, j, 1]), np.float32(live[i, j, 2])
            for c in range(3):
                x = lip_map[c, 0] * b + lip_map[c, 1] * g + lip_map[c, 2] * r + lip_map[c, 3]
                rec = min(max(np.rint(x), np.float32(0)), np.float32(255))
                out = np.float32(crop[i, j, c]) * (np.float32(1) - t) + rec * t
                crop[i, j, c] = np.uint8(min(max(np.rint(out), np.float32(0)), np.float32(255)))
            mask[i, j] = np.uint8(min(np.rint(new_m), np.float32(255)))


def _warm_lips() -> None:
    """Compile (or load from numba's on-disk cache) :func:`_blend_lips` before the first frame."""
    px, one = np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2), np.uint8)
    _blend_lips(px, one, one.copy(), np.ones((2, 2), np.float32), px.copy(), np.zeros((3, 4), np.float32))


def _with_alpha(bgr: ImageBGR, alpha: Mask) -> npt.NDArray[np.uint8]:
    """BGRA image from BGR and an alpha plane (cvtColor + one plane copy: 10x cv2.merge)."""
    out = u8(cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA))
    out[..., 3] = alpha
    return out


def _disc(d: float) -> npt.NDArray[np.uint8]:
    """Elliptic structuring element of (odd) diameter about ``d``."""
    k = _odd(d)
    return u8(cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))


def _mirror_u(image: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Mirror a UV-space image about u = 0.5 (the canonical layout is symmetric to 0.1 %)."""
    n = image.shape[1]
    m = np.array([[-1.0, 0.0, float(n)], [0.0, 1.0, 0.0]])
    return f32(
        cv2.warpAffine(
            image, m, (n, image.shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
    )
