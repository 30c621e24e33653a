"""Text front end of text-to-tokens: cleaners, numbers, phonemizer and the 178-symbol set."""
