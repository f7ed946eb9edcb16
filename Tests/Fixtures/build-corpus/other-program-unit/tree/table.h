const char *lookup(int slot);
int table_size(void);
extern int lookups;
