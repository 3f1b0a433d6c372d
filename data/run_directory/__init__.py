"""The files runs and sections write, for every layer above: a run directory's files written
atomically by the chief only (run_files), its checkpoints, the lock that keeps a second copy of
a run out (run_lock) and the section results contract (section_results)."""
