"""Files: the safe model/parameter archive (archive) and atomic writes."""
