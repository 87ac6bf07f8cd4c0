"""Math answer verification: exact where it can be, math-verify otherwise, always isolated."""

from rlscale.verify.answer import MAX_ANSWER_CHARS, extract_answer, normalize_gold
from rlscale.verify.pool import Verdict, VerifierPool

__all__ = ["MAX_ANSWER_CHARS", "Verdict", "VerifierPool", "extract_answer", "normalize_gold"]
