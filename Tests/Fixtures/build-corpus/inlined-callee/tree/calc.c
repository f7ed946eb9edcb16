static inline int clamp(int v)
{
    if (v < 0)
        return 0;
    if (v > 1000)
        return 1000;
    return v;
}

int add_scaled(int a, int b)
{
    return clamp(a * 3 + b);
}

int sub_scaled(int a, int b)
{
    return clamp(a * 3 - b);
}

int unrelated(int a)
{
    return a * 7 + 1;
}
