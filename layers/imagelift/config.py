"""Configuration: one frozen object per concern, every field documented, read from the environment here only.

Handlers, services and the command line call ``<Config>.from_env()``; nothing else reads ``os.environ``.
Each field's environment variable is the upper-case field name with the class prefix given in ``_PREFIX``,
unless noted. Defaults are what production runs with.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Self


def _coerce(raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, Path):
        return Path(raw)
    return raw


class _FromEnv:
    _PREFIX: ClassVar[str] = ""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Self:
        """Build from ``environ`` (default ``os.environ``); explicit ``overrides`` win over both."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name in overrides:
                values[f.name] = overrides[f.name]
                continue
            name = f.metadata.get("env", f"{cls._PREFIX}{f.name.upper()}")
            if name in env and env[name] != "":
                default = f.default if f.default is not f.default_factory else f.default_factory()  # type: ignore[misc]
                try:
                    values[f.name] = _coerce(env[name], default)
                except ValueError as exc:
                    raise ValueError(f"environment variable {name}={env[name]!r} is not valid: {exc}") from exc
        return cls(**values)

    @classmethod
    def set_in_env(cls, environ: dict[str, str] | None = None) -> frozenset[str]:
        """Names of the fields ``environ`` sets (non-empty), as opposed to those left at their defaults."""
        env = os.environ if environ is None else environ
        return frozenset(
            f.name
            for f in fields(cls)  # type: ignore[arg-type]
            if env.get(f.metadata.get("env", f"{cls._PREFIX}{f.name.upper()}"), "") != ""
        )


def default_models_dir() -> Path:
    """Models baked into the Lambda image live beside the code; locally they are built into ./models."""
    task_root = os.environ.get("LAMBDA_TASK_ROOT")
    if task_root:
        return Path(task_root) / "models"
    return Path.cwd() / "models"


@dataclass(frozen=True)
class StorageConfig(_FromEnv):
    """Where things live in AWS. Names come from template.yaml through the function environment."""

    _PREFIX: ClassVar[str] = ""
    categories_table: str = "ImageCategories"
    """DynamoDB table of classification records (env CATEGORIES_TABLE)."""
    reports_table: str = "InfluenceReports"
    """DynamoDB table of weekly report summaries (env REPORTS_TABLE)."""
    data_bucket: str = ""
    """Bucket holding sales exports under ``sales_prefix`` and reports under ``reports_prefix`` (env DATA_BUCKET)."""
    sales_prefix: str = "sales/"
    """Prefix of the sellers' sales exports in the data bucket (env SALES_PREFIX)."""
    reports_prefix: str = "reports/"
    """Prefix reports are written under: <prefix><date>/ and <prefix>latest/ (env REPORTS_PREFIX)."""
    images_prefix: str = "images/"
    """Prefix of product photos in the uploads bucket (env IMAGES_PREFIX)."""


@dataclass(frozen=True)
class StackConfig(_FromEnv):
    """Which deployed stack the operator commands (backfill, reclassify) work on when no table is named.

    They read the table and bucket names from the stack's outputs (env ``IMAGELIFT_STACK``).
    """

    _PREFIX: ClassVar[str] = "IMAGELIFT_"
    stack: str = "imagelift"
    """CloudFormation stack name; samconfig.toml deploys under this one."""


@dataclass(frozen=True)
class ReviewerConfig(_FromEnv):
    """Who a person's correction of a category is recorded as (``imagelift correct``, unless ``--by`` names them)."""

    _PREFIX: ClassVar[str] = "IMAGELIFT_"
    reviewer: str = ""
    """The reviewer's name or e-mail (env IMAGELIFT_REVIEWER)."""
    login: str = field(default="", metadata={"env": "USER"})
    """The login name, recorded when no reviewer is named (env USER)."""

    @property
    def who(self) -> str:
        return self.reviewer or self.login


@dataclass(frozen=True)
class VisionConfig(_FromEnv):
    """The photo classifier (imagelift.vision): where the models are and every threshold the cascade uses.

    Environment variables are ``IMAGELIFT_`` + the upper-case field name, e.g. ``IMAGELIFT_FACE_MIN_CONFIDENCE``.
    The cascade copies these values into every result (``thresholds``) so a record says how it was decided.
    """

    _PREFIX: ClassVar[str] = "IMAGELIFT_"
    models_dir: Path = field(default_factory=default_models_dir)
    """Built models: mtcnn/{pnet,rnet,onet}.onnx, yolo/yolov3-tiny.onnx, manifest.json (env IMAGELIFT_MODELS_DIR)."""
    threads: int = 1
    """ONNX Runtime intra-op threads per session; 1 suits a Lambda with one vCPU. 0 lets ONNX Runtime choose."""

    # Safe decoding: checked from the header before any pixel is decoded.
    max_bytes: int = 40 * 1024 * 1024
    """Largest encoded file accepted, in bytes."""
    max_pixels: int = 50_000_000
    """Largest width x height accepted (decompression bombs); 50 MP covers current phone cameras."""
    max_decode_bytes: int = 200_000_000
    """Largest decode accepted, in bytes: width x height x channels x bytes per sample as stored (a 50 MP 8-bit
    RGB photo is 150 MB, 8-bit RGBA 200 MB; a 16-bit RGBA PNG is 8 bytes a pixel, so at most 25 MP). Both the
    decoder's memory (it briefly holds about twice this) and its time grow with it: at 200 MB the worst accepted
    file peaks near 600 MB and decodes in about 4 s on one core (bench/results/hostile.json)."""
    max_jpeg_scans: int = 100
    """Most scans a JPEG may have (libjpeg-turbo's own tools default to 100; cameras and encoders write 1 to about
    12). Every scan is another pass over the whole picture, so this bounds the decode time of progressive scan bombs."""
    max_jpeg_scan_pixels: int = 1_000_000_000
    """Most scans x pixels a JPEG may cost: the decode time budget (about 1.5 s on one core at the limit; a
    50 MP photo may have 20 scans, a 12 MP one 83, anything up to 10 MP the full ``max_jpeg_scans``)."""
    accept_corrupt: bool = False
    """Keep pictures whose decoder warned about corrupt or missing data (libjpeg patches them with grey); by default
    they are recorded ``failed`` with code ``corrupt``."""
    decode_long_side: int = 400
    """Photos are decoded reduced while the long side stays at least ``max(decode_long_side, face_max_side)``:
    JPEGs at 1/2, 1/4 or 1/8 scale (libjpeg skips most of the work), PNG and WebP by a whole factor while converted
    to 8-bit. Both stages look at that one decode (the person stage was tuned on it: bench/tune_vision.py).
    0 = full size."""

    # Faces (MTCNN): a face makes the photo category 1.
    face_min_size: int = 16
    """Smallest face MTCNN looks for, in pixels of the (capped) analysis image: sets the pyramid's first scale
    (12 / face_min_size). Chosen with ``face_max_side`` and ``face_min_confidence`` by nested cross-validation over
    ../images + ../pool and four copies of each photo (bench/face_tuning.py; bench/results/face_tuning.json): with
    20 instead of 16 at 640 px, 112 instead of 115 of 155 model copies are found, 9 instead of 6 of 1885 product
    copies get a false face (photo-fold CV). 12 (bench/second_look_tuning.py, bench/results/second_look_tuning.json)
    found 120 of 155 model copies at score 0.9 in nested CV over photo folds and with sources left out, with 7 of
    1885 product copies called model (against 115 and 6-10 here), for 1.58x the face stage's CPU time on photos of
    1280 px and more (1.63x over all originals): not shipped for that cost."""
    face_max_side: int = 640
    """MTCNN runs on the photo shrunk so its long side is at most this (speed; a face under
    ``face_min_size * max_side / face_max_side`` original pixels is then missed). 400 lost the 25-40 px faces of
    600-1000 px photos: 98 of 155 model copies found in CV against 115 at 640 (with ``face_min_size`` 16); it
    costs about 2.7 times the face-stage time of 400 px / 20 px. 800 and 960 (bench/second_look_tuning.py) found 118
    and 121 of 155 model copies over photo folds (118 and 115 with sources left out; 7-10 of 1885 product copies called
    model) for 1.55x and 2.32x the face stage's CPU time on photos of 1280 px and more: not shipped for that cost."""
    face_scale_factor: float = 0.709
    """Ratio between neighbouring levels of MTCNN's image pyramid (the paper's 1/sqrt(2)); closer to 1 means more
    levels, more P-Net runs and fewer faces that fall between two scales. 0.6 is faster (11.4 ms less CPU median per
    photo: bench/results/face_scale_speed.json) but loses in nested CV at 640 px / 16 px with the score re-chosen
    per fold (bench/face_tuning.py, ``scale_factor_comparison``): 111 instead of 115 of 155 model copies in photo
    folds (71.6% against 74.2%, binomial s.e. 3.6%), 15 instead of 6 of 1885 product copies with a false face
    leaving sources out (0.8% against 0.3%, s.e. 0.2% and 0.1%); 0.65 gives 22 of 1885 leaving sources out."""
    face_pnet_threshold: float = 0.7
    """P-Net candidate score. The paper's 0.6 sends about twice as many candidates to R-Net for the same faces
    (bench lever "P-Net threshold 0.6")."""
    face_rnet_threshold: float = 0.7
    """R-Net refinement score (MTCNN paper default)."""
    face_onet_threshold: float = 0.7
    """O-Net score for MTCNN to report a face at all (paper default); the cascade decides with the stricter
    ``face_min_confidence``. While it stays at or below that, it changes no category and no near miss: NMS keeps
    the best-scoring box first, so a candidate under it never suppresses one above ``face_min_confidence``."""
    face_min_confidence: float = 0.93
    """O-Net score a face needs to make the photo category 1. Chosen by nested CV (most model copies found with
    at most 0.5% of product and worn copies called model): 0.93 in every photo fold and in 29 of 31 source folds.
    At 0.9, 13 instead of 6 of 1885 product copies got a false face, for one more model copy found."""

    face_gate_min_person: float = 0.125
    """MTCNN runs only where the primary YOLO net, on the whole photo (the pass the person stage runs first, so
    its result is reused there), gives a person at least this score; below it no face is looked for (the record's
    ``face_gate`` says so) and the photo goes on to the person and hand stages. No model copy among the tuning
    photos scores under 0.23. Chosen by nested cross-validation (bench/person_gate.py,
    bench/results/person_gate.json: the smallest threshold with the fewest errors, 0.125 in every photo fold and
    every source left out): model recall unchanged (74.2% both schemes), 6 of 1885 product copies' false faces
    removed (products called model or worn 0.9% -> 0.6% with the hand stage as shipped), the face stage skipped on
    79% of copies (94% of product copies). 0 = the face stage always runs."""

    face_second_look: bool = False
    """When the first face pass finds no face but a person box is found, run MTCNN again on the upscaled head
    region of each person box (imagelift.vision.second_look); a face found there makes the photo category 1.
    Off: nested cross-validation over the head fraction (0.25 / 0.35 / 0.5), the upscale (1.5 / 2 / 3), the crop
    source (the capped decode or a finer one) and the score (bench/second_look_tuning.py,
    bench/results/second_look_tuning.json) found 122 instead of 115 of 155 model copies over photo folds but turned
    2 of 310 worn copies into model (a child seen from the side, face not visible), and with sources left out found
    none more while turning 5 worn copies into model (a mirror selfie with the face covered, a boot); products
    unchanged (6 of 1885). The 7 copies gained are 3 photos of one source (open-mmlab/mmpose). The values below are
    the untuned ones measured in bench/results/second_look.json."""
    face_second_look_head_fraction: float = 0.35
    """Top fraction of a person box searched in the second look."""
    face_second_look_upscale: float = 2.0
    """Enlargement of the head crop before MTCNN, so a 25 px face becomes about 50 px."""
    face_second_look_min_confidence: float = 0.97
    """O-Net score a second-look face needs; stricter than ``face_min_confidence`` because an enlarged crop gives
    MTCNN more windows to be wrong in."""

    pose_face: bool = True
    """Where a person was found but no face, look for a head facing the camera on each person box with MoveNet
    (``pose_model``, imagelift.vision.pose_face); one found makes the photo category 1. On: by nested
    cross-validation (bench/pose_face.py, bench/results/pose_face.md) it finds 92.9% / 83.9% of model copies against
    74.2% (photo folds / sources left out), for 3.5% / 3.9% of worn copies called model; products unchanged. It costs
    about 8 ms per person box looked at, on the photos it reaches."""
    pose_model: str = "body/movenet-lightning.onnx"
    """MoveNet Lightning model file under ``models_dir`` (built by ``imagelift models build``)."""
    pose_face_score: str = "head"
    """Which head score decides (imagelift.vision.body.HEAD_KEYPOINTS): ``face`` (mean of nose and eyes),
    ``face_min`` (the smallest of them) or ``head`` (mean of nose, eyes and ears)."""
    pose_face_min_score: float = 0.38
    """Head score a person box needs for the photo to be category 1: chosen with ``pose_face_score`` and
    ``pose_face_away_penalty`` on all tuning photos by the most model recall with at most 2% of worn photos called
    model (the thresholds chosen in the CV's training parts range from 0.36 to 0.52)."""
    pose_face_away_penalty: float = 0.15
    """Subtracted from a person box's head score when MoveNet places the eyes as on a person turned away from the
    camera (imagelift.vision.body.facing_away): people seen from behind are worn photos."""
    pose_face_max_boxes: int = 3
    """Person boxes MoveNet looks at, most confident first."""
    pose_face_crop_margin: float = 0.15
    """Margin added on each side of a person box's long side for MoveNet's square crop."""
    pose_face_review_margin: float = 0.1
    """A head score this close to ``pose_face_min_score`` (either side) marks the record ``review``: the smallest
    margin that puts half the stage's wrong calls in review in cross-validation (bench/results/pose_face.md: 54% of
    them over photo folds, 58% with sources left out, for 18-19% of the copies that reach the stage, about 1.6% of
    all copies)."""

    # Persons (YOLO nets, COCO class 0): a person without a face makes the photo category 2. The defaults are what
    # bench/tune_vision.py chose by nested cross-validation (bench/results/vision_tuning.json).
    yolo_model: str = "yolo/yolov3-tiny.onnx"
    """Primary YOLO model file under ``models_dir`` (e.g. a user-converted ``yolo/yolov3.onnx``)."""
    second_yolo_model: str = "yolo/yolov4-tiny.onnx"
    """A second YOLO opinion under ``models_dir``, combined with the primary by ``person_combine``; empty = none."""
    person_combine: str = "min"
    """How the nets' best person scores in a pass make the pass's score: ``max``, ``mean`` or ``min``. ``min`` (both
    nets must see a person) kept studio product shots out best for the worn photos it keeps (CV)."""
    person_min_confidence: float = 0.25
    """Score (objectness x class, combined over the nets) a person needs in the whole-photo pass."""
    person_padded_min_confidence: float = 0.5
    """Score a person needs in the padded pass (when ``padded_pass`` is on; the CV chose it off, so this is
    the untuned middle of the grid)."""
    yolo_input_size: int = 192
    """Letterboxed YOLO input for the whole photo (0 skips this pass). Small on purpose: worn-look photos are
    close-ups, and a frame-filling person shrunk to ~200 px matches the scale the tiny nets learnt on COCO."""
    padded_pass: bool = False
    """Second YOLO pass on the photo shrunk into a grey canvas, for people who fill the frame. Off: within the
    speed budget, two nets on the whole photo beat one net on both passes in cross-validation. Over budget, both nets
    on a 320 padded canvas alone keep 58% of worn photos against 52% (0.8% against 0.6% of products called worn,
    photo-fold CV), at 2.6x the person stage's cost."""
    padded_input_size: int = 320
    """Canvas side of the padded pass."""
    padded_scale: float = 0.5
    """Fraction of the canvas side the photo's long side takes in the padded pass."""
    review_margin: float = 0.24
    """A person score this close to its pass's threshold (either side) marks the record ``review``: the margin that
    best separated wrong decisions from right ones in cross-validation."""
    face_review_margin: float = 0.05
    """The best face score this close to ``face_min_confidence`` (either side) marks the record ``review``. Chosen
    like ``review_margin`` (bench/face_tuning.py): no margin under 1 - face_min_confidence catches half of the
    face-stage errors (most are small faces scoring near 0), so the widest one kept is used: 1.1% of copies in
    review, 5 of 46 face-stage errors among them (photo-fold CV)."""

    # Hands (HandTrack, imagelift.vision.hand_stage): where no face and no person was found, a hand seen on both
    # inputs together with a weak person vote makes the photo category 2. The thresholds are what
    # bench/hands_fusion.py chose by nested cross-validation under the task's budget (products called worn or model,
    # fitted at 0.75%), on the cascade with its face gate: CV hands 52.2% / 50.4% against 35.6% without the stage,
    # all worn 64.8% / 65.8% against 51.9%, products called worn or model 0.9% / 0.9% (photo folds / sources left
    # out). The gate's removing false faces left the stage more of the budget: before it, 0.50 / 0.12 gave hands
    # 46.1% / 47.8% and all worn 62.3% / 61.3% at the same 0.9%.
    hand_stage: bool = True
    """Run the hand stage (``hand_model``, built by ``imagelift models build``). On: by CV the only measured lever
    that moves worn recall (+10 points) within the 1% product budget. Checking the free person vote first, it
    costs a median 0.3 ms (p95 26 ms) on the photos it reaches (bench/results/hand_stage_check.json)."""
    hand_model: str = "hands/handtrack.onnx"
    """HandTrack model file under ``models_dir``."""
    hand_min_confidence: float = 0.43
    """Best hand score (classes hand, fist, pinch, point) the photo needs both stretched to the net's input and
    padded to a square: a shoe seen as a fist on one input seldom is on the other."""
    hand_person_min_confidence: float = 0.12
    """Best person score of any YOLO net in any pass (a near miss: below the person threshold) the photo also
    needs: HandTrack alone calls boots on a plain background fists."""

    def __post_init__(self) -> None:
        # from_env hands a string for fields with a default factory; keep the type promised above.
        object.__setattr__(self, "models_dir", Path(self.models_dir))

    @property
    def decode_target_long_side(self) -> int | None:
        """The long side a photo is decoded down to (never below what MTCNN may look at), None for full size."""
        return max(self.decode_long_side, self.face_max_side) if self.decode_long_side else None


@dataclass(frozen=True)
class ReportConfig(_FromEnv):
    """How the weekly influence report is estimated and laid out (env REPORT_<FIELD>)."""

    _PREFIX: ClassVar[str] = "REPORT_"
    controls: str = ""
    """Comma-separated names of extra numeric columns in the sales exports to use as controls (e.g. ``promo``)."""
    confidence: float = 0.95
    """Confidence level of every interval in the report."""
    min_cell_rows: int = 30
    """Fewest listing-weeks of a category, inside products where it varies, for its effect to be reported."""
    min_cell_products: int = 3
    """Fewest products in which a category varies for its effect to be reported."""
    per_product_min_rows: int = 8
    """Fewest listing-weeks in each of a category and product-only within one product for a per-product effect."""
    fe_tol: float = 1e-10
    """Convergence tolerance of the fixed-effect sweeps (relative to the column's largest value)."""
    irls_tol: float = 1e-10
    """Convergence tolerance of PPML's IRLS, on the relative change in deviance."""
    html_max_products: int = 60
    """Rows of the per-product table shown in the HTML report (the JSON and CSV hold them all)."""
    fdr: float = 0.10
    """False-discovery rate of the per-product flags (Benjamini-Hochberg within each photo type)."""
    elasticity_min: float = -6.0
    """Most negative price elasticity taken as plausible; beyond it the report warns."""
    elasticity_max: float = -0.1
    """Least negative price elasticity taken as plausible; above it (and at or above zero) the report warns."""
    top_products: int = 3
    """How many of the largest products' share of the Poisson weight the report shows."""
    jackknife_top_share: float = 0.3
    """When the top products carry more than this share of a coefficient's Poisson weight, or the effective number
    of products is below ``jackknife_min_effective``, that interval comes from the leave-one-product-out jackknife
    (CR3) instead of CRV1, whose few large clusters then make it too narrow."""
    jackknife_min_effective: float = 30.0
    bootstrap_draws: int = 999
    """Draws of the wild score bootstrap that gives the headline intervals when the weight is concentrated."""
    bootstrap_seed: int = 0
    """Seed of those draws: the same data give the same report."""
    power: float = 0.8
    """Power at which the report states the smallest lift each comparison could detect."""
    power_lift_pct: float = 5.0
    """The lift (percent) for which the report says how much more data a comparison would need to detect it."""
    confusion: str = ""
    """The classifier's confusion matrix (the JSON of ``imagelift evaluate --json`` on labelled photos, or of
    ``imagelift review --confusion``): a file for ``imagelift report``, a key in the data bucket for the scheduled
    report (under the sales prefix, which the function may read). When set, the report also shows the category
    effects corrected for the classifier's mistakes."""
    cell_sums_min_rows: int = 100_000
    """Rows from which the headline PPML and the two OLS fits (log(units), price premium) are solved on product x
    week cell sums (one pass over the rows per Newton step; OLS exactly in one pass) instead of by sweeping the fixed
    effects out of every row; the same estimates either way. Solving the PPML on cells was about 0.7x the time at
    100k rows and no faster at 10k (bench/report_bench.py)."""
    blas_threads: int = 1
    """Threads BLAS may use while the report is built (0: the library's default, one per core). The fits multiply
    small matrices, where thread start-up costs more than it saves: one thread ran the 1M-row report's fits about
    twice as fast as two on a 2-core machine (bench/results/report_speed.json)."""
    sql_stages_min_rows: int = 2_000_000
    """Export rows from which the checks across files and the as-of join run as SQL on DuckDB (the rows spilled to a
    temporary directory past ``sql_memory_limit_mb``) instead of in pandas; the same counts and frames either way
    (imagelift.influence.sales_route). 0: always SQL. Reading 1M daily rows took 0.9 GB either way (one file's
    parse) and about 1.5x the time in SQL; 10M took 4.0 GB in pandas against 1.7 GB (bench/results/ingest_scale.json)."""
    sql_memory_limit_mb: int = 1024
    """Memory DuckDB may hold for those stages before it spills to disk."""
    listing_category: str = "main"
    """Which photos give a listing-week its category: ``main`` (the listing's main photo: ``main.*``, else the lowest
    leading position number ``01-...``, see imagelift.records.keys) or ``any_model`` (``model`` when any live photo of
    the gallery is a model photo, else the main photo's category)."""

    def __post_init__(self) -> None:
        if self.listing_category not in ("main", "any_model"):
            raise ValueError(f"REPORT_LISTING_CATEGORY={self.listing_category!r} is not main or any_model")

    def control_columns(self) -> tuple[str, ...]:
        return tuple(c.strip().lower() for c in self.controls.split(",") if c.strip())


@dataclass(frozen=True)
class SalesConfig(_FromEnv):
    """How sales exports are read (env REPORT_<FIELD>, e.g. REPORT_SALES_FORMAT, REPORT_COLUMNS)."""

    _PREFIX: ClassVar[str] = "REPORT_"
    sales_format: str = "auto"
    """Export layout: ``imagelift``, ``shopify``, ``amazon-business-report``, or ``auto`` (the first whose headers
    the file has)."""
    columns: str = ""
    """Header overrides, ``field=Header,...`` (fields week, product_id, listing_id, units, price, sales)."""
    decimal: str = "auto"
    """Decimal mark of numbers: ``.``, ``,`` or ``auto`` (per file, from the values; disagreement is an error)."""
    dayfirst: str = "auto"
    """Day/month order of dates like 06/01/2025: ``true``, ``false`` or ``auto`` (an ambiguous file is an error)."""
    week_start: str = "auto"
    """Weekly rows labelled by ``monday`` or ``sunday``; ``auto`` takes Sunday when every date of a weekly file is one."""
    max_units: float = 100_000.0
    """Most units one listing can sell in a week; more is rejected as implausible."""
    max_price_factor: float = 20.0
    """A listing-week's price more than this factor above or below the listing's median price is rejected."""
    fill_zeros: bool = False
    """Add zero-sale weeks that an export left out, for listings with a live photo (else only a warning)."""
    window_weeks: int = 52
    """Weeks before the report date the scheduled report reads (0: all history)."""

    def dayfirst_choice(self) -> bool | None:
        value = str(self.dayfirst).strip().lower()
        if value in {"auto", ""}:
            return None
        if value in {"1", "true", "yes", "on", "day"}:
            return True
        if value in {"0", "false", "no", "off", "month"}:
            return False
        raise ValueError(f"REPORT_DAYFIRST={self.dayfirst!r} is not true, false or auto")
