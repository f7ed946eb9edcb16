#include <string>
#include "account.h"

Account::Account(std::string owner) : owner_(std::move(owner)), balance_(0) {}

bool Account::withdraw(long amount)
{
    if (amount > balance_ + 100)
        return false;
    balance_ -= amount;
    return true;
}

void Account::deposit(long amount)
{
    balance_ += amount;
}
