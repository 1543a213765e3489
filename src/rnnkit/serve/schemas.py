"""The HTTP API's request and response bodies: one pydantic model each, which is also the OpenAPI document.

Bounds that never change (a beam of at most 32, a probability in (0, 1]) live here so the schema states them;
limits a deployment chooses (input length, tokens per request, batch size) are flags of ``rnnkit serve`` and are
checked by the app, which answers 413 naming the flag. Strings must be valid Unicode (no lone surrogates, which
JSON allows but UTF-8 cannot encode) and numbers finite, so a request that parses is one the models can take.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from rnnkit.config import DEFAULT_NEW_TOKENS

MAX_SEED = 2**63 - 1
MAX_BEAM = 32
MAX_TOP_K = 1_000_000
MAX_TEMPERATURE = 100.0


def _unicode(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid Unicode text (it holds a lone surrogate)") from None
    return text


Text = Annotated[str, AfterValidator(_unicode)]
ModelName = Annotated[
    str | None,
    Field(
        max_length=200,
        description=(
            "which loaded model answers (see GET /v1/models); may be left out when only one model offers this endpoint"
        ),
    ),
]
Seed = Annotated[int | None, Field(ge=0, le=MAX_SEED, description="fixes the sampling")]


class Request(BaseModel):
    """Unknown fields are errors (a misspelt option should not be silently ignored); numbers must be finite; types
    are strict (``"5"`` is not an integer, ``1.0`` is not one either, ``true`` is not a number) - what a typed
    client sends, and what the OpenAPI document says."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class Response(BaseModel):
    model_config = ConfigDict(allow_inf_nan=True)

    model: str = Field(description="the model that answered")


# -- generate -------------------------------------------------------------------------------------------------
class GenerateRequest(Request):
    model: ModelName = None
    prompt: Text = Field(description="text to continue (empty: start a new sentence)")
    max_new_tokens: int = Field(
        default=DEFAULT_NEW_TOKENS,
        ge=1,
        description=(
            "tokens to generate (words of a word-level model), as `rnnkit generate --max-new-tokens` and "
            "`Run.generate(max_new_tokens=...)`, with the same default (or this server's limit where lower)"
        ),
    )
    temperature: float = Field(default=1.0, ge=0.0, le=MAX_TEMPERATURE, description="0 = greedy")
    top_k: int = Field(default=0, ge=0, le=MAX_TOP_K, description="sample among the k most likely (0 = all)")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="nucleus sampling mass (1 = off)")
    seed: Seed = None


class GenerateResponse(Response):
    prompt: str
    text: str = Field(description="the continuation (without the prompt)")


# -- translate ------------------------------------------------------------------------------------------------
class TranslateRequest(Request):
    model: ModelName = None
    text: Text = Field(description="the sentence to translate")
    beam: int | None = Field(default=None, ge=1, le=MAX_BEAM, description="beam size (default: the run's; 1 = greedy)")
    max_new_tokens: int | None = Field(
        default=None, ge=1, description="most output tokens (default: 2 x the source's + 10)"
    )
    length_penalty: float | None = Field(
        default=None, ge=0.0, le=100.0, description="GNMT length penalty alpha of beam search (default: the run's)"
    )


class TranslateResponse(Response):
    translation: str
    source_tokens: list[str]
    target_tokens: list[str] = Field(description="output tokens, one per attention row")
    unknown: list[str] = Field(description="source words the model has never seen")
    score: float | None = Field(description="log-probability (divided by the length penalty with beam search)")
    attention: list[list[float]] | None = Field(
        description=("weights (target tokens x source tokens), rows sum to 1; null when the model has no attention")
    )


# -- chat -----------------------------------------------------------------------------------------------------
class ChatRequest(Request):
    model: ModelName = None
    text: Text = Field(description="the message")
    history: list[Text] = Field(
        default_factory=list, max_length=64, description="earlier turns, oldest first (used when the run reads context)"
    )
    replies: int | None = Field(default=None, ge=1, description="candidate replies (default: the run's)")
    decoding: Literal["sample", "beam", "greedy"] | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=MAX_TEMPERATURE)
    top_k: int | None = Field(default=None, ge=0, le=MAX_TOP_K)
    beam: int | None = Field(default=None, ge=1, le=MAX_BEAM)
    seed: Seed = None
    max_new_tokens: int | None = Field(default=None, ge=1, description="longest reply in tokens (default: the run's)")


class ChatResponse(Response):
    replies: list[str]


# -- classify -------------------------------------------------------------------------------------------------
class ClassifyRequest(Request):
    """Exactly one of ``text``, ``texts`` (a batch), ``sequence`` (numbers, for sequence classifiers)."""

    model: ModelName = None
    text: Text | None = None
    texts: list[Text] | None = Field(default=None, min_length=1, description="several inputs at once")
    sequence: list[float] | None = Field(
        default=None,
        min_length=1,
        description=("numeric input of a sequence classifier, laid out as GET /v1/models says (input_format)"),
    )


class Prediction(BaseModel):
    label: str
    probability: float
    probabilities: dict[str, float]


class ClassifyResponse(Response):
    label: str | None = Field(default=None, description="for text / sequence")
    probability: float | None = None
    probabilities: dict[str, float] | None = None
    results: list[Prediction] | None = Field(default=None, description="for texts, in input order")


# -- forecast -------------------------------------------------------------------------------------------------
class ForecastRequest(Request):
    model: ModelName = None
    history: list[float] | list[list[float]] | None = Field(
        default=None,
        min_length=1,
        description=(
            "the series to continue, oldest first: numbers for one column, or rows of numbers for several; "
            "default: the end of the run's own series"
        ),
    )
    horizon: int | None = Field(default=None, ge=1, description="steps to forecast (default: the run's)")
    level: float | None = Field(default=None, gt=0.0, lt=1.0, description="interval coverage (default: the run's)")
    seed: int = Field(default=0, ge=0, le=MAX_SEED)


class ForecastResponse(Response):
    columns: list[str]
    horizon: int
    interval: float
    times: list[str] = Field(description="labels of the forecast steps")
    forecast: list[Any] = Field(description="per step: a number (one column) or a row (several); null if not finite")
    lower: list[Any]
    upper: list[Any]
    history: list[Any] = Field(description="the last points of the history used, for plotting")
    history_times: list[str]


# -- models and errors ----------------------------------------------------------------------------------------
class ModelInfo(BaseModel):
    name: str
    task: str
    recipe: str
    run: str
    endpoints: list[str]
    info: dict[str, Any]


class ModelsResponse(BaseModel):
    models: list[ModelInfo]
    limits: dict[str, int]


class Health(BaseModel):
    status: str
    models: int


class ErrorItem(BaseModel):
    loc: list[str | int] = Field(description="where in the body: field names and list indices ([] for the whole)")
    msg: str
    type: str = Field(description="what kind of mistake (pydantic's error type, or value_error)")


class ErrorBody(BaseModel):
    """Every error the server answers, whatever its status: the one shape clients parse."""

    detail: str = Field(description="what was wrong, in one line")
    errors: list[ErrorItem] = Field(
        default_factory=list, description="field by field, where the mistake is in a field ([] otherwise)"
    )
