"""FHIR documents the server assembles: the case file and the referral feedback.

Shared by ``$case-bundle`` (server/operations/case_bundle.py) and ``DiagnosticReport/$document``
(server/operations/report_document.py); the contract is docs/documents.md.

* ``closure.close``: the reference closure of the section entries, read through the caller's
  repository (policy and redaction apply), unresolvable references reduced to display-only;
* ``compose``: Composition, coded sections with narrative, the ``document`` Bundle;
* ``check.document_problems``: every reason a Bundle is not a valid, self-contained document.
"""

from server.documents.check import document_problems

__all__ = ["document_problems"]
