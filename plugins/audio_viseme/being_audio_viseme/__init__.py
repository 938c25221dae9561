"""Being audio plugin: speech -> phones (pocketsphinx) -> visemes -> coarticulated motion."""
