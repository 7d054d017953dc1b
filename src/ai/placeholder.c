/* placeholder: replaced by the inference engine */
int kith_ai_placeholder_(void);
int kith_ai_placeholder_(void) { return 0; }
