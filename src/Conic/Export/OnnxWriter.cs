using Conic.Models;
using Conic.Runtime;
using static TorchSharp.torch;
using static Conic.Export.OnnxGraph;

namespace Conic.Export;

/// <summary>
/// Writes a backbone (ResNet, ViT or ConvNeXt), or a fine-tuned classifier, segmenter or detector built on one, as an
/// ONNX model (opset 17): pixels in [0, 1] as [batch, C, height, width] float32 in, batch and image size dynamic (a
/// ViT's position table is resampled in the graph, bicubically as in training). Written directly as protocol buffers
/// (no ONNX exporter exists for TorchSharp). The input normalisation is part of the graph; every BatchNorm is folded
/// into the convolution before it (inference statistics).
/// </summary>
public static class OnnxWriter
{
    const int IrVersion = 8, Opset = 17;
    /// <summary>The names of the encoder's input (pixels in [0, 1]) and output (pooled features).</summary>
    public const string InputName = "image", OutputName = "features";

    /// <summary>Writes the encoder as ONNX: pixels in [0, 1] [batch, C, H, W], normalised inside the graph, pooled features [batch, D] out.</summary>
    public static void Write(string path, Models.Backbone backbone, float[] channelMean, float[] channelStd, IReadOnlyDictionary<string, string> metadata)
    {
        var graph = new OnnxGraph();
        graph.Node("Identity", [OnnxBackbones.PooledFeatures(graph, backbone, Normalized(graph, backbone, channelMean, channelStd))], output: OutputName);
        Save(path, graph.Build("conic_encoder", [Value(InputName, ["batch", (long)backbone.Options.InputChannels, "height", "width"])],
                               [Value(OutputName, ["batch", (long)backbone.FeatureDim])]), metadata);
    }

    /// <summary>The names of a fine-tuned network's outputs: class logits and the predicted class.</summary>
    public const string LogitsName = "logits", ClassMapName = "classes";

    /// <summary>A fine-tuned classifier: pixels in [0, 1] in; class logits [batch, K] and the predicted class (int64) [batch] out.</summary>
    public static void WriteClassifier(string path, ClassificationNetwork network, float[] channelMean, float[] channelStd, IReadOnlyDictionary<string, string> metadata)
    {
        var graph = new OnnxGraph();
        string x = OnnxBackbones.PooledFeatures(graph, network.Backbone, Normalized(graph, network.Backbone, channelMean, channelStd));
        var fc = network.Classifier;
        string weight = graph.Constant("fc.weight", fc.weight!.detach().cpu().data<float>().ToArray(), fc.weight.shape);
        string bias = graph.Constant("fc.bias", fc.bias!.detach().cpu().data<float>().ToArray(), fc.bias.shape);
        string logits = graph.Node("Gemm", [x, weight, bias], [Int("transB", 1)], output: LogitsName);
        graph.Node("ArgMax", [logits], [Int("axis", 1), Int("keepdims", 0)], output: ClassesName);
        Save(path, graph.Build("conic_classifier", [Value(InputName, ["batch", (long)network.Backbone.Options.InputChannels, "height", "width"])],
                               [Value(LogitsName, ["batch", fc.weight.shape[0]]), Value(ClassesName, ["batch"], Int64Type)]), metadata);
    }

    /// <summary>
    /// A fine-tuned segmenter (backbone + FPN decoder): pixels in [0, 1] [batch, C, height, width] in; class logits
    /// [batch, K, height, width] and the class map (argmax, int64) [batch, height, width] out.
    /// </summary>
    public static void WriteSegmenter(string path, DenseNetwork network, float[] channelMean, float[] channelStd, IReadOnlyDictionary<string, string> metadata)
    {
        var graph = new OnnxGraph();
        string input = Normalized(graph, network.Backbone, channelMean, channelStd);
        string maps = Decoder(graph, network, OnnxBackbones.Stages(graph, network.Backbone, input));
        if (!network.UpsamplesToInput) throw new ArgumentException("a segmenter's maps are upsampled to the input", nameof(network));
        // As DenseNetwork: resized unless the finest stage has the input's size (a ResNet's small stem).
        if (network.Backbone is not ResNet { FirstStageStride: 1 }) maps = graph.Resize(maps, graph.SpatialSize(InputName), "linear");
        graph.Node("Identity", [maps], output: LogitsName);
        graph.Node("ArgMax", [maps], [Int("axis", 1), Int("keepdims", 0)], output: ClassMapName);
        Save(path, graph.Build("conic_segmenter", [Value(InputName, ["batch", (long)network.Backbone.Options.InputChannels, "height", "width"])],
                               [Value(LogitsName, ["batch", (long)network.Outputs, "height", "width"]),
                                Value(ClassMapName, ["batch", "height", "width"], Int64Type)]), metadata);
    }

    /// <summary>The names of a detector's outputs: boxes, their scores and class labels.</summary>
    public const string BoxesName = "boxes", ScoresName = "scores", ClassesName = "labels";

    /// <summary>
    /// A fine-tuned CenterNet detector: pixels in [0, 1] in; the best <paramref name="keep"/> peaks of the class heat
    /// maps out: boxes [batch, keep, 4] as [x, y, width, height] in input pixels, scores [batch, keep] and class indices
    /// (int64, 0-based in category order) [batch, keep]. Decoding is in the graph: sigmoid, 3×3 max-pool peaks, TopK.
    /// </summary>
    public static void WriteDetector(string path, DenseNetwork network, int classes, int keep, float[] channelMean, float[] channelStd,
                                     IReadOnlyDictionary<string, string> metadata)
    {
        var graph = new OnnxGraph();
        string maps = Decoder(graph, network, OnnxBackbones.Stages(graph, network.Backbone, Normalized(graph, network.Backbone, channelMean, channelStd)));
        string Channels(int from, int to) => graph.Node("Slice", [maps, graph.Int64s([from]), graph.Int64s([to]), graph.Int64s([1])]);
        string heat = graph.Node("Sigmoid", [Channels(0, classes)]);
        string pooled = graph.Node("MaxPool", [heat], [Ints("kernel_shape", 3, 3), Ints("strides", 1, 1), Ints("pads", 1, 1, 1, 1)]);
        string peaks = graph.Node("Mul", [heat, graph.Node("Cast", [graph.Node("Equal", [pooled, heat])], [Int("to", FloatType)])]);
        string flat = graph.Node("Flatten", [peaks], [Int("axis", 1)]);
        string cells = graph.Node("Mul", [graph.Slice(graph.Node("Shape", [maps]), 2, 3), graph.Slice(graph.Node("Shape", [maps]), 3, 4)]);
        string width = graph.Slice(graph.Node("Shape", [maps]), 3, 4);
        string count = graph.Node("Min", [graph.Int64s([keep]), graph.Node("Mul", [cells, graph.Int64s([classes])])]);
        string scores = graph.Node("TopK", [flat, count], [Int("axis", 1)], output: ScoresName, extraOutputs: 1);
        string index = scores + ":1";
        string cell = graph.Node("Mod", [index, cells]);
        graph.Node("Div", [index, cells], output: ClassesName);
        string stride = graph.Constant("output_stride", [network.OutputStride], [1]);
        string Float(string value) => graph.Node("Cast", [value], [Int("to", FloatType)]);
        string ys = Float(graph.Node("Div", [cell, width])), xs = Float(graph.Node("Mod", [cell, width]));
        // One map of the box channels gathered at the peaks' cells: [batch, keep].
        string At(int channel) => graph.Node("GatherElements", [graph.Node("Flatten", [Channels(channel, channel + 1)], [Int("axis", 1)]), cell], [Int("axis", 1)]);
        string boxWidth = graph.Node("Mul", [graph.Node("Exp", [At(classes)]), stride]);
        string boxHeight = graph.Node("Mul", [graph.Node("Exp", [At(classes + 1)]), stride]);
        string half = graph.Constant("half", [0.5f], [1]);
        string left = graph.Node("Sub", [graph.Node("Mul", [graph.Node("Add", [xs, At(classes + 2)]), stride]), graph.Node("Mul", [boxWidth, half])]);
        string top = graph.Node("Sub", [graph.Node("Mul", [graph.Node("Add", [ys, At(classes + 3)]), stride]), graph.Node("Mul", [boxHeight, half])]);
        var corners = new[] { left, top, boxWidth, boxHeight }.Select(v => graph.Node("Unsqueeze", [v, graph.Int64s([2])])).ToArray();
        graph.Node("Concat", corners, [Int("axis", 2)], output: BoxesName);
        Save(path, graph.Build("conic_detector", [Value(InputName, ["batch", (long)network.Backbone.Options.InputChannels, "height", "width"])],
                               [Value(BoxesName, ["batch", "detections", 4L]), Value(ScoresName, ["batch", "detections"]),
                                Value(ClassesName, ["batch", "detections"], Int64Type)]), metadata);
    }

    /// <summary>The input, normalised with the training statistics.</summary>
    static string Normalized(OnnxGraph graph, Models.Backbone backbone, float[] channelMean, float[] channelStd)
    {
        long[] perChannel = [1, backbone.Options.InputChannels, 1, 1];
        string x = graph.Node("Sub", [InputName, graph.Constant("channel_mean", channelMean, perChannel)]);
        return graph.Node("Div", [x, graph.Constant("channel_std", channelStd, perChannel)]);
    }

    /// <summary>The FPN decoder of <see cref="DenseNetwork"/> on the stage outputs: its maps at the first stage's resolution.</summary>
    static string Decoder(OnnxGraph graph, DenseNetwork network, List<string> stages)
    {
        string? merged = null;
        for (int i = stages.Count - 1; i >= 0; i--)
        {
            string projected = graph.Conv($"decoder.lateral{i}", network.Lateral[i], stages[i]);
            merged = merged is null ? projected : graph.Node("Add", [projected, graph.Resize(merged, graph.SpatialSize(projected), "nearest")]);
        }
        string smoothed = graph.Node("Relu", [graph.FoldedConv("decoder.smooth", (network.Smooth, network.SmoothNorm), merged!)]);
        return graph.Conv("decoder.output", network.OutputLayer, smoothed);
    }

    static void Save(string path, ProtobufWriter graphProto, IReadOnlyDictionary<string, string> metadata)
    {
        var model = new ProtobufWriter()
            .Int(1, IrVersion)
            .String(2, "Conic")
            .Message(7, graphProto)
            .Message(8, new ProtobufWriter().String(1, "").Int(2, Opset));
        foreach (var (key, value) in metadata) model.Message(14, new ProtobufWriter().String(1, key).String(2, value));
        AtomicFile.Write(path, stream => stream.Write(model.ToArray()));
    }

    /// <summary>A graph input or output: a float32 (or <paramref name="type"/>) tensor whose dimensions are fixed (long) or named (string, dynamic).</summary>
    static ProtobufWriter Value(string name, object[] dimensions, int type = FloatType)
    {
        var shape = new ProtobufWriter();
        foreach (var dimension in dimensions)
        {
            var dim = new ProtobufWriter();
            if (dimension is long size) dim.Int(1, size);
            else dim.String(2, (string)dimension);
            shape.Message(1, dim);
        }
        var tensorType = new ProtobufWriter().Int(1, type).Message(2, shape);
        return new ProtobufWriter().String(1, name).Message(2, new ProtobufWriter().Message(1, tensorType));
    }
}
