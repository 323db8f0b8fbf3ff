namespace Conic;

/// <summary>Option checks shared by every options record; each failure names the option and its value in one line.</summary>
static class Check
{
    public static void Positive(string option, double value)
    {
        if (!(value > 0)) throw new ConicException($"{option}: {value} must be > 0");
    }

    public static void NonNegative(string option, double value)
    {
        if (value < 0) throw new ConicException($"{option}: {value} must be >= 0");
    }

    public static void UnitInterval(string option, double value)
    {
        if (value is < 0 or > 1) throw new ConicException($"{option}: {value} must be in [0, 1]");
    }

    public static void Probability(string option, double value)
    {
        if (value is < 0 or > 1) throw new ConicException($"{option}: {value} is not a probability in [0, 1]");
    }
}
