"""The Azure AI Search adapter, checked at the HTTP boundary of the real azure-search-documents SDK.

No Azure here. The SDK's clients get a `RecordingTransport` (tests/fixtures/azure_search/replay.py):
every request the SDK builds from the adapter's calls is recorded (method, path, query, JSON body)
and answered with responses shaped like the service's documented ones (JSON files next to it).
Retry waits are recorded rather than slept.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from azure.core.credentials import AzureKeyCredential
from azure.search.documents.indexes.models import HnswAlgorithmConfiguration
from azure.search.documents.indexes.models import SearchIndex as IndexDefinition

from shared.config import load_settings
from shared.search.azure_ai_search import (
    INDEX_DEFINITION_PATH,
    MAX_BATCH_BYTES,
    RESULT_FIELDS,
    SEARCH_FIELDS,
    SEMANTIC_CONFIGURATION,
    TEXT_SCORING_PROFILE,
    VECTOR_FIELD,
    AzureAISearchIndex,
    IndexingFailed,
    odata_filter,
    to_search_document,
    to_simple_query,
)
from shared.search.port import (
    EMBEDDING_DIM,
    FACET_FIELDS,
    FacetCount,
    IndexDimensionMismatch,
    IndexDocument,
    SearchFilters,
    SearchIndex,
    SearchQuery,
)
from tests.fixtures.azure_search.replay import (
    RecordingTransport,
    Reply,
    ScriptedResponder,
    all_succeed,
    index_reply,
    load_fixture,
)

ENDPOINT = "https://stock-search.search.windows.net"
ALIAS = "images"


def doc(n: int, **overrides: Any) -> IndexDocument:
    fields: dict[str, Any] = {
        "image_id": UUID(int=n, version=4),
        "contributor_id": f"contrib-{n % 7}",
        "revision": 1 + n % 3,
        "title": f"Photo {n}",
        "description": "A test photo",
        "keywords": ["cat", "pet"],
        "tags": ["tabby cat"],
        "category": "animals",
        "usage": "commercial",
        "width": 1200,
        "height": 800,
        "orientation": "landscape",
        "colors": ["orange", "white"],
        "embedding": [((n + i) % 17) / 17 for i in range(EMBEDDING_DIM)],
        "safety_score": 0.02,
        "thumbnail_url": f"https://acct.blob.core.windows.net/thumbnails/{n}.jpg",
        "phash": f"{n:016x}",
        "added_at": datetime(2026, 11, 1, 12, 30, tzinfo=UTC),
        "popularity": n % 5,
    }
    return IndexDocument(**(fields | overrides))


def key(n: int) -> str:
    return str(UUID(int=n, version=4))


def index_definition_json(*, dimensions: int) -> dict[str, Any]:
    """The service's answer to GET /indexes('...') for an index built from our schema file."""
    definition = json.loads(INDEX_DEFINITION_PATH.read_text())
    for field in definition["fields"]:
        if field["name"] == VECTOR_FIELD:
            field["dimensions"] = dimensions
    return {**definition, "name": "images-20261101-000000-ab12", "@odata.etag": '"0x1"'}


def adapter(transport: RecordingTransport, **options: Any) -> AzureAISearchIndex:
    # The adapter's own backoff (207 retries) waits through the transport too, so it is recorded.
    return AzureAISearchIndex(
        ENDPOINT, ALIAS, AzureKeyCredential("test-admin-key"), transport=transport, sleep=transport.sleep, **options
    )


def unit_vector(axis: int) -> list[float]:
    return [1.0 if i == axis else 0.0 for i in range(EMBEDDING_DIM)]


# --- the index schema ---------------------------------------------------------------------------


def test_index_schema_builds_into_the_sdk_model_and_declares_every_field_the_adapter_uses():
    definition = json.loads(INDEX_DEFINITION_PATH.read_text())
    index = IndexDefinition(definition)
    assert index.as_dict() == definition  # nothing in the JSON is unknown to the SDK's model

    fields = {f.name: f for f in index.fields}
    assert [f.name for f in index.fields if f.key] == ["id"]
    assert set(fields) == set(to_search_document(doc(1)))  # the documents we send have exactly these fields
    assert set(RESULT_FIELDS) <= {name for name, f in fields.items() if f.retrievable}
    assert all(fields[name].searchable and fields[name].analyzer_name == "en.microsoft" for name in SEARCH_FIELDS)
    assert all(fields[name].facetable and fields[name].filterable for name in FACET_FIELDS)
    filtered = {"id", "category", "orientation", "colors", "contributor_id", "usage", "safety_score"}
    assert all(fields[name].filterable for name in filtered | {"width", "height", "added_at", "phash"})
    assert all(fields[name].sortable for name in ("added_at", "popularity"))
    assert fields["colors"].type == "Collection(Edm.String)"

    vector = fields[VECTOR_FIELD]
    assert vector.vector_search_dimensions == EMBEDDING_DIM
    profile = next(p for p in index.vector_search.profiles if p.name == vector.vector_search_profile_name)
    algorithm = next(a for a in index.vector_search.algorithms if a.name == profile.algorithm_configuration_name)
    assert isinstance(algorithm, HnswAlgorithmConfiguration)
    assert algorithm.parameters.metric == "cosine"
    assert algorithm.parameters.m and algorithm.parameters.ef_construction and algorithm.parameters.ef_search

    semantic = next(c for c in index.semantic_search.configurations if c.name == SEMANTIC_CONFIGURATION)
    assert semantic.prioritized_fields.title_field.field_name == "title"
    assert {f.field_name for f in semantic.prioritized_fields.content_fields} == {"description"}
    assert {f.field_name for f in semantic.prioritized_fields.keywords_fields} == {"keywords", "tags"}
    weighted = next(p for p in index.scoring_profiles if p.name == TEXT_SCORING_PROFILE)
    assert set(weighted.text_weights.weights) == set(SEARCH_FIELDS)


def test_adapter_keeps_the_port():
    assert isinstance(adapter(RecordingTransport(ScriptedResponder([]))), SearchIndex)


async def test_from_settings_uses_the_endpoint_alias_and_admin_key():
    settings = load_settings(
        SEARCH_BACKEND="azure", AZURE_SEARCH_ENDPOINT=ENDPOINT, AZURE_SEARCH_API_KEY="k", AZURE_SEARCH_INDEX="pics"
    )
    transport = RecordingTransport(ScriptedResponder([Reply(404, load_fixture("error_404.json"))]))
    index = AzureAISearchIndex.from_settings(settings, transport=transport)
    assert await index.get(UUID(int=1)) is None
    await index.close()
    [request] = transport.requests
    assert request.url.startswith(ENDPOINT + "/indexes('pics')/docs(")
    assert request.headers["api-key"] == "k"
    with pytest.raises(ValueError, match="AZURE_SEARCH_ENDPOINT"):
        AzureAISearchIndex.from_settings(load_settings())  # the settings already refuse azure without one


# --- index lifecycle ------------------------------------------------------------------------------


def echo(status: int):
    def reply(request):
        return Reply(status, {**request.json, "@odata.etag": '"0x1"'})

    return reply


async def test_ensure_ready_creates_an_index_and_the_alias_once():
    transport = RecordingTransport(
        ScriptedResponder([Reply(404, load_fixture("error_404.json")), echo(201), echo(201)])
    )
    index = adapter(transport)
    await index.ensure_ready()

    get_alias, create_index, create_alias = transport.requests
    assert (get_alias.method, get_alias.path) == ("GET", "/aliases('images')")
    assert (create_index.method, create_index.path) == ("POST", "/indexes")
    name = create_index.json["name"]
    assert name.startswith("images-") and name != ALIAS
    assert create_index.json == index.index_definition(name).as_dict()
    assert create_index.json["fields"] == json.loads(INDEX_DEFINITION_PATH.read_text())["fields"]
    assert (create_alias.method, create_alias.path) == ("POST", "/aliases")
    assert create_alias.json == {"name": "images", "indexes": [name]}

    alias = load_fixture("alias.json")
    transport.responder = ScriptedResponder([Reply(200, alias), Reply(200, create_index.json)])
    await index.ensure_ready()
    # The alias exists: only its index's vector size is checked, nothing more is created.
    assert [(r.method, r.path) for r in transport.requests[3:]] == [
        ("GET", "/aliases('images')"),
        ("GET", f"/indexes('{alias['indexes'][0]}')"),
    ]


async def test_the_vector_field_takes_the_embedding_models_dimension():
    transport = RecordingTransport(
        ScriptedResponder([Reply(404, load_fixture("error_404.json")), echo(201), echo(201)])
    )
    index = adapter(transport, dimension=512)
    await index.ensure_ready()

    fields = {f["name"]: f for f in transport.requests[1].json["fields"]}
    assert fields[VECTOR_FIELD]["dimensions"] == 512 and index.dimension == 512


async def test_an_index_of_another_models_dimension_is_refused_until_a_reindex_replaces_it():
    held = index_definition_json(dimensions=384)
    transport = RecordingTransport(ScriptedResponder([Reply(200, load_fixture("alias.json")), Reply(200, held)]))

    with pytest.raises(IndexDimensionMismatch, match=r"384-d vectors but the embedding model gives 512-d.*reindex"):
        await adapter(transport, dimension=512).ensure_ready()


async def test_ensure_ready_drops_its_index_when_another_worker_created_the_alias_first():
    conflict = {"error": {"code": "", "message": "Cannot create alias 'images' because it already exists."}}
    transport = RecordingTransport(
        ScriptedResponder([Reply(404, load_fixture("error_404.json")), echo(201), Reply(409, conflict), Reply(204)])
    )
    await adapter(transport).ensure_ready()
    created = transport.requests[1].json["name"]
    delete = transport.requests[-1]
    assert (delete.method, delete.path) == ("DELETE", f"/indexes('{created}')")


# --- writes ---------------------------------------------------------------------------------------


async def test_upsert_sends_whole_documents_as_upload_actions():
    transport = RecordingTransport(all_succeed)
    await adapter(transport).upsert([doc(1), doc(2, embedding=[], category=None)])

    [request] = transport.requests
    assert (request.method, request.path) == ("POST", "/indexes('images')/docs/search.index")
    assert request.query["api-version"]
    first, second = request.actions
    assert first["@search.action"] == "upload"
    assert first["id"] == key(1)
    assert first["added_at"] == "2026-11-01T12:30:00Z"
    assert first["embedding"] == doc(1).embedding
    assert first["colors"] == ["orange", "white"]
    assert second["embedding"] is None and second["category"] is None  # no vector: null, never []


async def test_upsert_splits_batches_at_1000_documents():
    transport = RecordingTransport(all_succeed)
    docs = [doc(n) for n in range(2500)]
    await adapter(transport).upsert(docs)

    batches = transport.to("search.index")
    assert [len(r.actions) for r in batches] == [1000, 1000, 500]
    assert [k for r in batches for k in r.keys] == [key(n) for n in range(2500)]  # in order, each once


async def test_upsert_splits_batches_at_16_mb():
    transport = RecordingTransport(all_succeed)
    big = "lorem ipsum dolor " * 6000  # ~108 kB of description per document
    docs = [doc(n, description=big) for n in range(400)]
    await adapter(transport).upsert(docs)

    batches = transport.to("search.index")
    assert len(batches) > 1
    assert all(len(r.body) <= MAX_BATCH_BYTES for r in batches)
    assert [k for r in batches for k in r.keys] == [key(n) for n in range(400)]
    # Packed as full as the limit allows: the next document would not have fitted.
    for this, following in itertools.pairwise(batches):
        assert len(this.body) + len(json.dumps(following.actions[0])) + 2 > MAX_BATCH_BYTES


async def test_a_single_document_over_the_payload_limit_is_refused_before_sending():
    transport = RecordingTransport(all_succeed)
    with pytest.raises(ValueError, match="over the"):
        await adapter(transport, max_batch_bytes=10_000).upsert([doc(1, description="x" * 20_000)])
    assert transport.requests == []


async def test_partial_failure_resends_only_the_documents_that_failed_transiently():
    transport = RecordingTransport(ScriptedResponder([Reply(207, load_fixture("index_207.json")), all_succeed]))
    docs = [doc(n) for n in range(5)]
    await adapter(transport).upsert(docs)

    first, retry = transport.to("search.index")
    assert first.keys == [key(n) for n in range(5)]
    assert retry.keys == [key(1), key(2), key(3)]  # 422, 503, 409 in the 207; 0 and 4 succeeded
    assert retry.actions == [a for a in first.actions if a["id"] in retry.keys]  # resent unchanged
    assert transport.sleeps == [1.0]


async def test_partial_failure_of_a_bad_document_is_not_resent_and_raises():
    transport = RecordingTransport(ScriptedResponder([Reply(207, load_fixture("index_207_bad_document.json"))]))
    with pytest.raises(IndexingFailed) as failure:
        await adapter(transport).upsert([doc(0), doc(1)])
    assert set(failure.value.failures) == {key(1)}
    assert failure.value.failures[key(1)][0] == 400
    assert len(transport.requests) == 1


async def test_documents_throttled_on_every_attempt_fail_after_backing_off():
    transport = RecordingTransport(lambda r: index_reply(r, {key(2): (503, "Service is too busy.")}))
    with pytest.raises(IndexingFailed) as failure:
        await adapter(transport, max_attempts=4, backoff_seconds=0.5).upsert([doc(n) for n in range(3)])

    assert [r.keys for r in transport.requests] == [[key(0), key(1), key(2)], [key(2)], [key(2)], [key(2)]]
    assert transport.sleeps == [0.5, 1.0, 2.0]
    assert failure.value.failures == {key(2): (503, "Service is too busy.")}


async def test_a_throttled_request_is_retried_after_the_retry_after_header():
    transport = RecordingTransport(
        ScriptedResponder([Reply(503, load_fixture("error_503.json"), {"Retry-After": "3"}), all_succeed])
    )
    await adapter(transport).upsert([doc(1), doc(2)])

    first, second = transport.requests
    assert first.body == second.body
    assert transport.sleeps == [3.0]


async def test_a_429_on_a_post_is_retried_too():
    transport = RecordingTransport(
        ScriptedResponder([Reply(429, load_fixture("error_503.json"), {"retry-after-ms": "1500"}), all_succeed])
    )
    await adapter(transport).upsert([doc(1)])
    assert len(transport.requests) == 2
    assert transport.sleeps == [1.5]


async def test_a_429_without_retry_after_is_retried_with_backoff_because_every_request_is_idempotent():
    transport = RecordingTransport(
        ScriptedResponder(
            [Reply(429, load_fixture("error_503.json")), Reply(429, load_fixture("error_503.json")), all_succeed]
        )
    )
    await adapter(transport, retry_backoff_factor=0.5).upsert([doc(1)])
    assert len(transport.requests) == 3
    assert transport.sleeps and all(0 < s <= 60 for s in transport.sleeps)


async def test_delete_sends_delete_actions_with_keys_only():
    transport = RecordingTransport(all_succeed)
    await adapter(transport).delete([UUID(int=1, version=4), UUID(int=2, version=4)])
    [request] = transport.requests
    assert request.actions == [
        {"@search.action": "delete", "id": key(1)},
        {"@search.action": "delete", "id": key(2)},
    ]


async def test_get_maps_the_stored_document_and_a_missing_one_to_none():
    transport = RecordingTransport(
        ScriptedResponder([Reply(200, load_fixture("document.json")), Reply(404, load_fixture("error_404.json"))])
    )
    index = adapter(transport)
    found = await index.get(UUID("6f1c1b1e-6c59-4a3e-9a57-1d2f0c3e8a11"))
    assert found is not None
    assert found.title == "Chelsea the cat" and found.revision == 3
    assert found.embedding == [] and found.category is None
    assert found.added_at == datetime(2026, 11, 20, 9, 15, tzinfo=UTC)
    assert await index.get(UUID(int=9)) is None
    assert transport.requests[0].path == "/indexes('images')/docs('6f1c1b1e-6c59-4a3e-9a57-1d2f0c3e8a11')"


# --- queries --------------------------------------------------------------------------------------


def replies(*fixtures: str) -> ScriptedResponder:
    return ScriptedResponder([Reply(200, load_fixture(name)) for name in fixtures])


async def test_hybrid_query_sends_text_vector_filter_facets_and_paging_in_one_request():
    transport = RecordingTransport(replies("search_vector_probe.json", "search_hybrid.json"))
    excluded = UUID(int=77, version=4)
    query = SearchQuery(
        text='cat "tabby cat" -dog',
        vector=unit_vector(3),
        filters=SearchFilters(
            category="kids' room",
            orientation="landscape",
            color="orange",
            contributor_id="o'brien",
            usage="commercial",
            max_safety_score=0.5,
            min_width=800,
            min_height=600,
            added_after=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            exclude_ids=[excluded],
            exclude_phashes=["c3d1e0f0a0b0c0d0"],
        ),
        offset=24,
        limit=24,
        facet_size=10,
        candidates=500,
    )
    result = await adapter(transport).search(query)

    probe, request = transport.requests
    assert (request.method, request.path) == ("POST", "/indexes('images')/docs/search.post.search")
    body = request.json
    assert body["search"] == 'cat "tabby cat" -dog'
    assert body["searchMode"] == "all" and body["queryType"] == "simple"
    assert body["searchFields"] == ",".join(SEARCH_FIELDS)
    assert body["scoringProfile"] == TEXT_SCORING_PROFILE
    assert body["filter"] == (
        "category eq 'kids'' room' and orientation eq 'landscape' and contributor_id eq 'o''brien' "
        "and usage eq 'commercial' and colors/any(c: c eq 'orange') and safety_score lt 0.5 "
        "and width ge 800 and height ge 600 and added_at gt 2026-01-02T03:04:05Z "
        f"and not search.in(id, '{excluded}', ',') and not search.in(phash, 'c3d1e0f0a0b0c0d0', ',')"
    )
    # 3 of the probe's neighbours are inside the floor (distances .05 .4 .72 | .95 1.0): k=3.
    assert body["vectorQueries"] == [{"kind": "vector", "vector": unit_vector(3), "k": 3, "fields": "embedding"}]
    assert body["facets"] == [f"{f},count:10" for f in ("category", "orientation", "colors", "usage")]
    assert (body["skip"], body["top"], body["count"]) == (24, 24, True)
    assert "orderby" not in body  # hybrid relevance: the service's RRF order
    assert VECTOR_FIELD not in body["select"].split(",")

    assert result.total == 57
    assert [h.document.image_id for h in result.hits] == [
        UUID("6f1c1b1e-6c59-4a3e-9a57-1d2f0c3e8a11"),
        UUID("0b7f4a52-2f7e-4f43-8c1a-5f3b0d6b2e90"),
    ]
    assert result.hits[0].score == pytest.approx(0.03279569745063782)
    assert result.hits[0].document.keywords == ["cat", "tabby", "pet"]
    assert result.facets["colors"] == [
        FacetCount(value="orange", count=22),
        FacetCount(value="white", count=19),
        FacetCount(value="black", count=9),
    ]
    assert set(result.facets) == set(FACET_FIELDS)

    # The probe: vector only, same filter, keys and scores of the `candidates` nearest.
    assert probe.path == request.path
    assert "search" not in probe.json and "facets" not in probe.json
    assert probe.json["filter"] == body["filter"]
    assert probe.json["select"] == "id" and probe.json["top"] == 500
    assert probe.json["vectorQueries"] == [
        {"kind": "vector", "vector": unit_vector(3), "k": 500, "fields": "embedding"}
    ]


async def test_hybrid_query_with_no_neighbour_inside_the_floor_keeps_only_the_keyword_leg():
    transport = RecordingTransport(replies("search_vector_probe_far.json", "search_hybrid.json"))
    await adapter(transport).search(SearchQuery(text="xqzzv", vector=unit_vector(5)))
    _, request = transport.requests
    assert request.json["search"] == "xqzzv"
    assert "vectorQueries" not in request.json
    assert request.json["orderby"] == "search.score() desc,added_at desc"  # as in keyword mode


async def test_probe_takes_every_candidate_when_all_it_sees_are_inside_the_floor():
    close = {"value": [{"@search.score": 0.99, "id": key(n)} for n in range(1000)]}
    transport = RecordingTransport(
        ScriptedResponder([Reply(200, close), Reply(200, load_fixture("search_hybrid.json"))])
    )
    await adapter(transport).search(SearchQuery(text="cat", vector=unit_vector(5), candidates=5000))
    probe, request = transport.requests
    assert probe.json["top"] == 1000  # the most one response holds
    assert request.json["vectorQueries"][0]["k"] == 5000


@pytest.mark.parametrize(
    ("text", "simple"),
    [
        ("cat", "cat"),
        ("red car", "red car"),
        ("cat OR dog", "(cat | dog)"),
        ("sunset beach OR sea -people", "sunset (beach | sea) -people"),
        ('"cup of coffee" morning', '"cup of coffee" morning'),
        ('-"black and white"', '-"black and white"'),
        ("c++ (beta) a:b title*", "c\\+\\+ \\(beta\\) a\\:b title\\*"),
        ("rock & roll | x", "rock \\& roll \\| x"),
        ("OR cat", "cat"),
        ("  ", None),
    ],
)
def test_web_search_syntax_becomes_simple_syntax(text, simple):
    assert to_simple_query(text) == simple


async def test_keyword_mode_sends_no_vector_and_breaks_score_ties_by_newest():
    transport = RecordingTransport(replies("search_hybrid.json"))
    await adapter(transport).search(SearchQuery(text="cat OR dog", vector=unit_vector(0), mode="keyword"))
    body = transport.requests[0].json
    assert body["search"] == "(cat | dog)"
    assert "vectorQueries" not in body
    assert body["orderby"] == "search.score() desc,added_at desc"


async def test_a_throttled_query_is_retried():
    transport = RecordingTransport(
        ScriptedResponder(
            [
                Reply(429, load_fixture("error_503.json")),
                Reply(503, load_fixture("error_503.json")),
                replies("search_hybrid.json"),
            ]
        )
    )
    result = await adapter(transport).search(SearchQuery(text="cat"))
    assert len(transport.requests) == 3 and result.total == 57


async def test_semantic_mode_is_vector_only_and_applies_the_relevance_floor():
    transport = RecordingTransport(replies("search_vector_probe.json", "search_vector.json"))
    result = await adapter(transport).search(
        SearchQuery(text="rocket", vector=unit_vector(1), mode="semantic", max_vector_distance=0.75)
    )
    probe, request = transport.requests
    assert probe.json["vectorQueries"][0]["k"] == 1000
    body = request.json
    assert "search" not in body and "searchMode" not in body
    assert "threshold" not in body["vectorQueries"][0]  # GA API: no threshold; the probe sized k
    assert body["vectorQueries"][0]["k"] == 3
    # Scores are 1/(1 + cosine distance); the port's score is 1 - distance.
    assert [h.document.title for h in result.hits] == ["Rocket launch", "Launch pad", "Coffee cup"]
    assert [h.score for h in result.hits] == pytest.approx([0.95, 0.6, 0.28])
    assert result.total == 3


async def test_semantic_query_with_nothing_inside_the_floor_finds_nothing():
    transport = RecordingTransport(replies("search_vector_probe_far.json"))
    result = await adapter(transport).search(SearchQuery(vector=unit_vector(1), mode="semantic"))
    assert len(transport.requests) == 1  # the probe alone
    assert result.hits == [] and result.total == 0
    assert result.facets == {field: [] for field in FACET_FIELDS}


async def test_the_vector_threshold_is_sent_to_the_service_when_enabled():
    transport = RecordingTransport(replies("search_hybrid.json"))  # one request: no probe
    await adapter(transport, vector_threshold=True).search(
        SearchQuery(text="cat", vector=unit_vector(2), max_vector_distance=0.6)
    )
    [vector_query] = transport.requests[0].json["vectorQueries"]
    assert vector_query["threshold"] == {"kind": "vectorSimilarity", "value": pytest.approx(0.4)}


async def test_semantic_ranker_option_asks_for_the_semantic_configuration():
    transport = RecordingTransport(replies("search_hybrid.json"))
    await adapter(transport, semantic_ranker=True).search(SearchQuery(text="cat"))
    body = transport.requests[0].json
    assert body["queryType"] == "semantic" and body["semanticConfiguration"] == SEMANTIC_CONFIGURATION


@pytest.mark.parametrize(
    ("query", "orderby"),
    [
        (SearchQuery(), "added_at desc"),  # browse: newest first
        (SearchQuery(sort="newest", text="cat"), "added_at desc"),
        (SearchQuery(sort="popular", vector=unit_vector(0)), "popularity desc,added_at desc"),
    ],
)
async def test_sort_orders(query, orderby):
    def service(request):  # the probe (keys only) or the query itself
        return Reply(
            200, load_fixture("search_vector_probe.json" if request.json["select"] == "id" else "search_hybrid.json")
        )

    transport = RecordingTransport(service)
    await adapter(transport).search(query)
    assert transport.requests[-1].json["orderby"] == orderby


async def test_browse_without_facets_asks_for_none_and_filters_nothing():
    transport = RecordingTransport(ScriptedResponder([Reply(200, {"@odata.count": 0, "value": []})]))
    result = await adapter(transport).search(SearchQuery(facets=False, limit=0))
    body = transport.requests[0].json
    assert "facets" not in body and "filter" not in body and "search" not in body
    assert body["top"] == 0
    assert result.hits == [] and result.total == 0 and result.facets == {}


def test_filters_quote_every_string_and_fall_back_when_a_value_holds_the_delimiter():
    assert odata_filter(SearchFilters()) is None
    assert odata_filter(SearchFilters(category="it's")) == "category eq 'it''s'"
    assert odata_filter(SearchFilters(exclude_phashes=["a,b", "c"])) == "not search.in(phash, 'a,b|c', '|')"


# --- rebuild ---------------------------------------------------------------------------------------


async def batches_of(docs: Sequence[IndexDocument], size: int) -> AsyncIterator[Sequence[IndexDocument]]:
    for start in range(0, len(docs), size):
        yield docs[start : start + size]


async def test_rebuild_fills_a_new_index_swaps_the_alias_and_drops_the_old_index():
    transport = RecordingTransport(
        ScriptedResponder(
            [echo(201), all_succeed, all_succeed, Reply(200, load_fixture("alias.json")), echo(200), Reply(204)]
        )
    )
    progress: list[int] = []
    written = await adapter(transport).rebuild(batches_of([doc(n) for n in range(7)], 4), progress.append)

    create, batch1, batch2, get_alias, put_alias, drop = transport.requests
    new = create.json["name"]
    assert (create.method, create.path) == ("POST", "/indexes")
    assert batch1.path == batch2.path == f"/indexes('{new}')/docs/search.index"  # built aside, not on the alias
    assert batch1.keys + batch2.keys == [key(n) for n in range(7)]
    assert (get_alias.method, get_alias.path) == ("GET", "/aliases('images')")
    assert (put_alias.method, put_alias.path) == ("PUT", "/aliases('images')")
    assert put_alias.json["indexes"] == [new]
    assert (drop.method, drop.path) == ("DELETE", "/indexes('images-20261101-000000-ab12')")
    assert written == 7 and sorted(progress) == [3, 4]


async def test_rebuild_writes_batches_concurrently_and_counts_every_document():
    def service(request):
        if request.path.endswith("search.index"):
            return all_succeed(request)
        if request.method == "GET":
            return Reply(404, load_fixture("error_404.json"))  # first rebuild: no alias yet
        return echo(201)(request)

    transport = RecordingTransport(service)
    progress: list[int] = []
    docs = [doc(n) for n in range(2300)]
    written = await adapter(transport, rebuild_concurrency=3).rebuild(batches_of(docs, 250), progress.append)

    assert written == 2300 and sum(progress) == 2300 and len(progress) == 10
    assert sorted(k for r in transport.to("search.index") for k in r.keys) == sorted(key(n) for n in range(2300))
    assert transport.requests[-1].method == "PUT" and transport.requests[-1].path == "/aliases('images')"


async def test_a_failed_rebuild_drops_the_half_built_index_and_leaves_the_alias_alone():
    transport = RecordingTransport(
        ScriptedResponder([echo(201), Reply(207, load_fixture("index_207_bad_document.json")), Reply(204)])
    )
    with pytest.raises(IndexingFailed):
        await adapter(transport).rebuild(batches_of([doc(0), doc(1)], 10))
    create, _, drop = transport.requests
    assert (drop.method, drop.path) == ("DELETE", f"/indexes('{create.json['name']}')")
    assert not any("aliases" in r.path for r in transport.requests)


async def test_keyword_words_that_match_nothing_together_are_asked_again_as_any_of_them():
    nothing = {"@odata.count": 0, "@search.facets": {}, "value": []}
    some = load_fixture("search_hybrid.json")
    transport = RecordingTransport(ScriptedResponder([Reply(200, nothing), Reply(200, some)]))

    result = await adapter(transport).search(SearchQuery(text="bedroom with fairy lights", mode="keyword"))

    assert [r.json["searchMode"] for r in transport.requests] == ["all", "any"]
    assert result.total == 57
    # Quotes, OR and exclusion are never loosened.
    transport = RecordingTransport(ScriptedResponder([Reply(200, nothing)]))
    assert (await adapter(transport).search(SearchQuery(text='"fairy lights" bedroom', mode="keyword"))).total == 0
    assert len(transport.requests) == 1
