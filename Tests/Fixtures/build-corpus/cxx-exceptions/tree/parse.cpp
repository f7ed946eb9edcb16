#include <stdexcept>
#include <string>

int parse_port(const std::string &s)
{
    try {
        int v = std::stoi(s);
        return v > 65535 ? -1 : v;
    } catch (const std::exception &) {
        return -1;
    }
}
