#include <cstdio>
#include "account.h"
int main()
{
    Account a("ann");
    a.deposit(50);
    std::printf("%d %ld\n", a.withdraw(120), a.balance());
    return 0;
}
