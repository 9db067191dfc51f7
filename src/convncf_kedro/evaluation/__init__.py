"""Evaluation as a library: the test-split protocols (``protocols``), the paired statistics and verdicts
(``comparison``) and what people read (``reporting``). Functions take typed settings; the pipeline layer parses."""
