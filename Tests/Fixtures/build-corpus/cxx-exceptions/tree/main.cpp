#include <cstdio>
#include <string>
int parse_port(const std::string &s);
int main(int argc, char **argv) { std::printf("%d\n", parse_port(argc > 1 ? argv[1] : "80")); return 0; }
