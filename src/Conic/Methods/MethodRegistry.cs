namespace Conic.Methods;

/// <summary>
/// Every pretraining method. To add one: a file with the method, its settings record and its
/// <see cref="MethodDefinition"/>; its line here; a test ("Adding a method" in docs/layout.md).
/// </summary>
public static class MethodRegistry
{
    public static readonly IReadOnlyList<MethodDefinition> All =
    [
        ConicMethod.Definition,
        InstDiscMethod.Definition,
        MocoMethod.Version1,
        MocoMethod.Version2,
        SimclrMethod.Definition,
        ByolMethod.Definition,
        SwavMethod.Definition,
        VicregMethod.Definition,
        SupervisedMethod.Definition,
    ];

    public static IEnumerable<string> Names => All.Select(m => m.Name);

    public static MethodDefinition? Find(string name) => All.FirstOrDefault(m => m.Name.Equals(name, StringComparison.OrdinalIgnoreCase));

    public static MethodDefinition Get(string name) =>
        Find(name) ?? throw new ConicException($"unknown method '{name}' (known: {string.Join(", ", Names)})");
}
