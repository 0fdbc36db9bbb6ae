"""Human-readable forms of the second-opinion report (docs/reports.md).

``facts`` gathers what a reader needs from the stored resources, ``pdf`` renders those facts
(pure: the same facts give the same bytes), ``hook`` attaches the PDF to the report's
``presentedForm`` when a final, amended or corrected report is written.
"""
