"""Forecast of deaths: when the planned number of deaths (the final analysis) is reached and how
many deaths are expected by the analysis date, pooled for blinded roles and by arm for the DSMB.
Defined once here."""
from __future__ import annotations

OUTPUTS = []
FIGURES = []
