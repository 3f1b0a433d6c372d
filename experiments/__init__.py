"""One absl binary per paper section (`python -m experiments.<name>`), plus shared flag helpers."""
