"""The release's 178-symbol inventory (facts from av_flow ``text/symbols.py``, keithito-style).

Order matters: ids index the text encoder's embedding table, so a released checkpoint only
reads correctly with exactly this order. The inventory holds the apostrophe twice (ids 174 and
176); the release maps a character to its *last* position, so ``'`` always encodes as 176 and
id 174 is never produced. We reproduce that rather than "fixing" it.
"""

from __future__ import annotations

PAD = "_"
PUNCTUATION = ';:,.!?¡¿—…"«»“” '
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
LETTERS_IPA = (
    "ɑɐɒæɓʙβɔɕçɗɖðʤəɘɚɛɜɝɞɟʄɡɠɢʛɦɧħɥʜɨɪʝɭɬɫɮʟɱɯɰŋɳɲɴøɵɸθœɶʘɹɺɾɻʀʁɽʂʃʈʧʉʊʋⱱʌɣɤʍχʎʏʑʐʒʔʡʕʢǀǁǂǃˈˌːˑʼʴʰʱʲʷˠˤ˞↓↑→↗↘'̩'ᵻ"
)

SYMBOLS: tuple[str, ...] = (PAD, *PUNCTUATION, *LETTERS, *LETTERS_IPA)
N_SYMBOLS = len(SYMBOLS)  # 178
PAD_ID = 0  # also the blank interspersed between symbols
SPACE_ID = SYMBOLS.index(" ")  # 16

# Last occurrence wins, as in the release (see module docstring).
SYMBOL_TO_ID: dict[str, int] = {sym: i for i, sym in enumerate(SYMBOLS)}
ID_TO_SYMBOL: dict[int, str] = dict(enumerate(SYMBOLS))
