struct conn {
    int fd;
    int state;
    long bytes;
};
struct conn *conn_first(struct conn **list);
int conn_state(const struct conn *c);
