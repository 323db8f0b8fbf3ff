using System.Runtime.InteropServices;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Export;

/// <summary>
/// An ONNX graph being built: nodes with generated output names, float32 and int64 initialisers, and the common
/// layers (convolutions with or without a BatchNorm folded in, Linear, LayerNorm, GELU, Resize) as TorchSharp computes them.
/// </summary>
sealed class OnnxGraph
{
    /// <summary>ONNX's element types.</summary>
    internal const int FloatType = 1, Int64Type = 7;

    /// <summary>Attributes of a node: an integer, integers, a float, a string.</summary>
    internal static ProtobufWriter Int(string name, long value) => new ProtobufWriter().String(1, name).Int(3, value).Int(20, 2);

    internal static ProtobufWriter Ints(string name, params long[] values) => new ProtobufWriter().String(1, name).PackedInts(8, values).Int(20, 7);

    internal static ProtobufWriter Float(string name, float value) => new ProtobufWriter().String(1, name).Float(2, value).Int(20, 1);

    internal static ProtobufWriter Text(string name, string value) => new ProtobufWriter().String(1, name).Bytes(4, System.Text.Encoding.UTF8.GetBytes(value)).Int(20, 3);

    readonly List<ProtobufWriter> _nodes = new(), _initializers = new();
    int _values;

    /// <param name="extraOutputs">Further outputs, named OUTPUT:1, OUTPUT:2, ... (e.g. TopK's indices).</param>
    public string Node(string op, string[] inputs, IEnumerable<ProtobufWriter>? attributes = null, string? output = null, int extraOutputs = 0)
    {
        output ??= $"{op.ToLowerInvariant()}_{_values++}";
        var node = new ProtobufWriter();
        foreach (var input in inputs) node.String(1, input);
        node.String(2, output);
        for (int i = 1; i <= extraOutputs; i++) node.String(2, $"{output}:{i}");
        node.String(3, output).String(4, op);
        foreach (var attribute in attributes ?? Array.Empty<ProtobufWriter>()) node.Message(5, attribute);
        _nodes.Add(node);
        return output;
    }

    public string Constant(string name, float[] values, long[] shape)
    {
        var tensor = new ProtobufWriter().PackedInts(1, shape).Int(2, FloatType).String(8, name)
                                         .Bytes(9, MemoryMarshal.AsBytes(values.AsSpan()));
        _initializers.Add(tensor);
        return name;
    }

    /// <summary>A float32 constant holding <paramref name="tensor"/>'s values.</summary>
    public string Constant(string name, Tensor tensor)
    {
        using var scope = NewDisposeScope();
        var values = tensor.detach().cpu().to(ScalarType.Float32).contiguous();
        return Constant(name, values.data<float>().ToArray(), values.shape);
    }

    /// <summary>x·Wᵀ + b over the last axis (a Linear layer) as MatMul and Add.</summary>
    public string Linear(string name, Tensor weight, Tensor bias, string x)
    {
        using var transposed = weight.detach().t();
        return Node("Add", [Node("MatMul", [x, Constant(name + ".weight", transposed)]), Constant(name + ".bias", bias)]);
    }

    /// <summary>The exact GELU, x·(1 + erf(x/√2))/2 (opset 17 has no Gelu node).</summary>
    public string Gelu(string x)
    {
        string erf = Node("Erf", [Node("Div", [x, Constant($"sqrt2_{_values++}", [MathF.Sqrt(2)], [1])])]);
        string onePlus = Node("Add", [erf, Constant($"one_{_values++}", [1f], [1])]);
        return Node("Mul", [Node("Mul", [x, onePlus]), Constant($"half_{_values++}", [0.5f], [1])]);
    }

    /// <summary>A LayerNorm over the last axis.</summary>
    public string LayerNorm(string name, (Tensor Weight, Tensor Bias) affine, double epsilon, string x) =>
        Node("LayerNormalization", [x, Constant(name + ".weight", affine.Weight), Constant(name + ".bias", affine.Bias)],
             [Int("axis", -1), Float("epsilon", (float)epsilon)]);

    /// <summary>A LayerNorm over the channels of each position of a [batch, C, H, W] map (timm's LayerNorm2d).</summary>
    public string ChannelLayerNorm(string name, Models.ChannelLayerNorm norm, string x)
    {
        string last = Node("Transpose", [x], [Ints("perm", 0, 2, 3, 1)]);
        var (weight, bias) = norm.Affine;
        return Node("Transpose", [LayerNorm(name, (weight, bias), Models.ChannelLayerNorm.Epsilon, last)], [Ints("perm", 0, 3, 1, 2)]);
    }

    /// <summary>A 1-D int64 constant (shapes, axes, slice bounds).</summary>
    public string Int64s(long[] values)
    {
        string name = $"int64s_{_values++}";
        _initializers.Add(new ProtobufWriter().PackedInts(1, [values.Length]).Int(2, Int64Type).String(8, name)
                                              .Bytes(9, MemoryMarshal.AsBytes(values.AsSpan())));
        return name;
    }

    /// <summary>Elements [from, to) of a 1-D tensor.</summary>
    public string Slice(string x, long from, long to) => Node("Slice", [x, Int64s([from]), Int64s([to])]);

    /// <summary>The height and width of a [batch, C, H, W] value, as int64 [2].</summary>
    public string SpatialSize(string x) => Slice(Node("Shape", [x]), 2, 4);

    /// <summary>
    /// <paramref name="x"/> resized to <paramref name="size"/> (height, width) as TorchSharp's interpolate does: nearest
    /// (index = floor(output index · scale)) or bilinear without corner alignment (half-pixel centres).
    /// </summary>
    public string Resize(string x, string size, string mode)
    {
        string sizes = Node("Concat", [Slice(Node("Shape", [x]), 0, 2), size], [Int("axis", 0)]);
        var attributes = mode == "nearest"
            ? new[] { Text("mode", "nearest"), Text("coordinate_transformation_mode", "asymmetric"), Text("nearest_mode", "floor") }
            : new[] { Text("mode", "linear"), Text("coordinate_transformation_mode", "pytorch_half_pixel") };
        return Node("Resize", [x, "", "", sizes], attributes);
    }

    /// <summary>A Conv node with the convolution's own weights and bias (no BatchNorm after it).</summary>
    public string Conv(string name, Conv2d conv, string input)
    {
        using var scope = NewDisposeScope();
        var weight = conv.weight!.detach().cpu().contiguous();
        string w = Constant(name + ".weight", weight.data<float>().ToArray(), weight.shape);
        var inputs = conv.bias is { } bias ? new[] { input, w, Constant(name + ".bias", bias.detach().cpu().data<float>().ToArray(), bias.shape) } : new[] { input, w };
        return Node("Conv", inputs, ConvAttributes(conv, weight.shape[2..]));
    }

    static ProtobufWriter[] ConvAttributes(Conv2d conv, long[] kernel)
    {
        long[] padding = conv.padding!.Length == 1 ? [conv.padding[0], conv.padding[0]] : conv.padding;
        long[] stride = conv.stride.Length == 1 ? [conv.stride[0], conv.stride[0]] : conv.stride;
        return [Ints("kernel_shape", kernel), Ints("strides", stride), Ints("pads", padding[0], padding[1], padding[0], padding[1]), Int("group", conv.groups)];
    }

    /// <summary>
    /// A Conv node whose weights and bias absorb the BatchNorm after it:
    /// W' = W·γ/√(σ²+ε) per output channel, b' = β − μ·γ/√(σ²+ε), computed in float64.
    /// </summary>
    public string FoldedConv(string name, (Conv2d Conv, BatchNorm2d Norm) pair, string input)
    {
        var (conv, norm) = pair;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var scale = norm.weight!.to(ScalarType.Float64).div(norm.running_var!.to(ScalarType.Float64).add(Kept(norm.eps), Kept(1)).sqrt());
        var weight = conv.weight!.to(ScalarType.Float64).mul(scale.view(-1, 1, 1, 1)).to(ScalarType.Float32).cpu().contiguous();
        var bias = norm.bias!.to(ScalarType.Float64).sub(norm.running_mean!.to(ScalarType.Float64).mul(scale)).to(ScalarType.Float32).cpu();
        string w = Constant(name + ".weight", weight.data<float>().ToArray(), weight.shape);
        string b = Constant(name + ".bias", bias.data<float>().ToArray(), bias.shape);
        return Node("Conv", [input, w, b], ConvAttributes(conv, weight.shape[2..]));
    }

    public ProtobufWriter Build(string name, ProtobufWriter[] inputs, ProtobufWriter[] outputs)
    {
        var graph = new ProtobufWriter();
        foreach (var node in _nodes) graph.Message(1, node);
        graph.String(2, name);
        foreach (var initializer in _initializers) graph.Message(5, initializer);
        foreach (var input in inputs) graph.Message(11, input);
        foreach (var output in outputs) graph.Message(12, output);
        return graph;
    }
}
