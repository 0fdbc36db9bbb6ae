"""How a patch fails, worded per format: 400 for a malformed patch document, 422 when a
well-formed operation cannot be applied to the resource (http.html#patch)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from server.errors import FhirError


@dataclass(frozen=True)
class PatchErrors:
    format_name: str  # "JSON Patch" | "FHIRPath Patch"
    locate: Callable[[int], str]  # operation index -> FHIRPath/JSON location of that operation

    def malformed(self, diagnostics: str, index: int | None = None) -> FhirError:
        where = [self.locate(index)] if index is not None else []
        return FhirError(
            400, "invalid", f"invalid {self.format_name}: {diagnostics}", expression=where
        )

    def unprocessable(self, diagnostics: str, index: int) -> FhirError:
        return FhirError(
            422,
            "processing",
            f"{self.format_name} operation {index} failed: {diagnostics}",
            expression=[self.locate(index)],
        )
