"""Configuration: the typed parameter groups (one per conf/base/parameters_<group>.yml) and the study's members.

The bottom layer: imports nothing of the project but ``errors``; the pipeline layer parses, everything else takes the
typed settings it is given (docs/architecture.md)."""
