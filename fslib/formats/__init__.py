"""Layer 1, the corpora's files as they lie on disk: XTREME's files and UD's CoNLL-U treebanks, their paths and
readers, the data errors that name a file and line, and stable seeds. No datasets, no torch: the run store and
batch planning read them."""
