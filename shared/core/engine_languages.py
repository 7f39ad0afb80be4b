"""Which language each engine can transcribe, checked when settings are read. Pure.

A route whose language an engine in its chain cannot transcribe is refused at start-up, naming the
route, the language and the engine, instead of paging nonsense for every call.

- Amazon Transcribe: the LanguageCode values of StartTranscriptionJob in botocore's service model
  (a test compares this list with the installed botocore's, so an upgrade that changes it fails
  until it is copied here).
- offline (pocketsphinx): the one acoustic model its wheel ships, US English.
- Google Speech-to-Text and Vonage: **not checked.** Google's list depends on the model and the
  region and is published only as a web page; Vonage publishes none for `record` transcription.
  A language either refuses fails that job, which then falls to the route's next engine.
"""

from __future__ import annotations

__all__ = ["AWS_LANGUAGES", "IDENTIFYING_ENGINES", "OFFLINE_LANGUAGES", "engine_language_fault"]

AWS_LANGUAGES = frozenset(
    {
        "ab-GE",
        "af-ZA",
        "am-ET",
        "ar-AE",
        "ar-SA",
        "ast-ES",
        "az-AZ",
        "ba-RU",
        "be-BY",
        "bg-BG",
        "bn-IN",
        "bs-BA",
        "ca-ES",
        "ckb-IQ",
        "ckb-IR",
        "cs-CZ",
        "cy-GB",
        "cy-WL",
        "da-DK",
        "de-CH",
        "de-DE",
        "el-GR",
        "en-AB",
        "en-AU",
        "en-GB",
        "en-IE",
        "en-IN",
        "en-NZ",
        "en-US",
        "en-WL",
        "en-ZA",
        "es-ES",
        "es-MX",
        "es-US",
        "et-EE",
        "et-ET",
        "eu-ES",
        "fa-AF",
        "fa-IR",
        "fi-FI",
        "fr-CA",
        "fr-FR",
        "ga-IE",
        "gd-GB",
        "gl-ES",
        "gu-IN",
        "ha-NG",
        "he-IL",
        "hi-IN",
        "hr-HR",
        "ht-HT",
        "hu-HU",
        "hy-AM",
        "id-ID",
        "is-IS",
        "it-IT",
        "ja-JP",
        "jv-ID",
        "ka-GE",
        "kab-DZ",
        "kk-KZ",
        "km-KH",
        "kn-IN",
        "ko-KR",
        "ky-KG",
        "lg-IN",
        "lt-LT",
        "lv-LV",
        "mhr-RU",
        "mi-NZ",
        "mk-MK",
        "ml-IN",
        "mn-MN",
        "mr-IN",
        "ms-MY",
        "mt-MT",
        "my-MM",
        "ne-NP",
        "nl-NL",
        "no-NO",
        "or-IN",
        "pa-IN",
        "pl-PL",
        "ps-AF",
        "pt-BR",
        "pt-PT",
        "ro-RO",
        "ru-RU",
        "rw-RW",
        "si-LK",
        "sk-SK",
        "sl-SI",
        "so-SO",
        "sq-AL",
        "sr-RS",
        "su-ID",
        "sv-SE",
        "sw-BI",
        "sw-KE",
        "sw-RW",
        "sw-TZ",
        "sw-UG",
        "ta-IN",
        "te-IN",
        "th-TH",
        "tl-PH",
        "tr-TR",
        "tt-RU",
        "ug-CN",
        "uk-UA",
        "uz-UZ",
        "vi-VN",
        "wo-SN",
        "zh-CN",
        "zh-HK",
        "zh-TW",
        "zu-ZA",
    }
)
OFFLINE_LANGUAGES = frozenset({"en-US"})
# The engines that identify the language spoken among a route's `languages`.
IDENTIFYING_ENGINES = frozenset({"aws", "google"})
_KNOWN = {"aws": AWS_LANGUAGES, "offline": OFFLINE_LANGUAGES}
_NAMES = {"aws": "Amazon Transcribe", "offline": "pocketsphinx's bundled model", "google": "Google", "vonage": "Vonage"}


def engine_language_fault(engine: str, language: str) -> str | None:
    """Why `engine` cannot transcribe `language`; None when it can, or when that is not known here."""
    known = _KNOWN.get(engine)
    if known is None or language in known:
        return None
    if len(known) == 1:
        return f"{_NAMES[engine]} transcribes only {next(iter(known))}"
    return f"{_NAMES[engine]} does not transcribe it"
