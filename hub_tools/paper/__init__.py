"""The paper's facts as data: the seven principles (Box B), the topic taxonomy (Table 4), the prompts
(Appendix A) and the public release's layout. Everything else in the toolkit reads them from here."""
