#include <string>
class Account {
public:
    explicit Account(std::string owner);
    bool withdraw(long amount);
    void deposit(long amount);
    long balance() const { return balance_; }
private:
    std::string owner_;
    long balance_;
};
