"""Documents made from a report: the executive PDF (and, through scanner.export, HTML)."""
