"""The phone-number rule that ``curate.pii`` applies and that the pre-check in
``curate.speedups.pii`` must never be stricter than.

It sits below both, so that the speed-up never imports the module it speeds up.
"""

# A valid number with fewer national digits than this is a short code or an extension; in
# web text such 4-6 digit "numbers" are years, prices and IDs far more often than phones.
PHONE_MIN_NATIONAL_DIGITS = 7
