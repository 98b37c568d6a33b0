"""Files: the safe model/parameter format (``archive``), safetensors (``safetensors``), the
book's pickles behind ``allow_pickle`` (``book_pickle``), atomic writes (``atomic``) and the
regular-file check every reader shares (``files``)."""
