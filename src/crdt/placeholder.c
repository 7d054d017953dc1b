/* placeholder: replaced by the CRDT engine */
int kith_crdt_placeholder_(void);
int kith_crdt_placeholder_(void) { return 0; }
