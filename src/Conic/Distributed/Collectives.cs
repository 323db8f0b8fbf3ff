using static TorchSharp.torch;
using static TorchSharp.torch.autograd;

namespace Conic.Distributed;

/// <summary>
/// Collectives that autograd differentiates through, for losses computed over the global batch. Each rank
/// back-propagates its own copy of the loss; the gradient trainer then averages the replicated parameters' gradients
/// over the ranks, so the backward of a value every rank sees (a sum, a gathered batch) sums the gradients all ranks
/// computed for it.
/// </summary>
public static class Collectives
{
    /// <summary>Σ over ranks of <paramref name="values"/>; the gradient of each rank's input is Σ over ranks of the output gradients.</summary>
    public static Tensor SumAcross(ProcessGroup processes, Tensor values) =>
        processes.IsDistributed ? SumAcrossRanks.apply(values, processes) : values;

    /// <summary>Every rank's <paramref name="values"/> stacked along dimension 0 in rank order, with gradient to each rank's own rows.</summary>
    public static Tensor GatherAcross(ProcessGroup processes, Tensor values) =>
        processes.IsDistributed ? GatherAcrossRanks.apply(values, processes) : values;

    /// <summary>The element-wise maximum over ranks of <paramref name="values"/>, without gradient (a shift for a softmax).</summary>
    public static Tensor MaximumAcross(ProcessGroup processes, Tensor values)
    {
        if (!processes.IsDistributed) return values;
        var maximum = values.detach().clone();
        processes.AllReduce(maximum, Reduction.Max);
        return maximum;
    }

    /// <summary>Every rank's <paramref name="values"/> stacked, without gradient (indices, keys for a queue).</summary>
    public static Tensor GatherConstant(ProcessGroup processes, Tensor values) =>
        processes.IsDistributed ? processes.AllGather(values.detach()) : values;

    sealed class SumAcrossRanks : SingleTensorFunction<SumAcrossRanks>
    {
        public override string Name => nameof(SumAcrossRanks);

        public override Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var processes = (ProcessGroup)vars[1];
            ctx.save_data("processes", processes);
            var sum = ((Tensor)vars[0]).clone();
            processes.AllReduce(sum);
            return sum;
        }

        public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
        {
            var gradient = gradOutput.clone();
            ((ProcessGroup)ctx.get_data("processes")).AllReduce(gradient);
            return [gradient, null!];
        }
    }

    sealed class GatherAcrossRanks : SingleTensorFunction<GatherAcrossRanks>
    {
        public override string Name => nameof(GatherAcrossRanks);

        public override Tensor forward(AutogradContext ctx, params object[] vars)
        {
            var (values, processes) = ((Tensor)vars[0], (ProcessGroup)vars[1]);
            ctx.save_data("processes", processes);
            ctx.save_data("rows", values.shape[0]);
            return processes.AllGather(values);
        }

        public override List<Tensor> backward(AutogradContext ctx, Tensor gradOutput)
        {
            var processes = (ProcessGroup)ctx.get_data("processes");
            long rows = (long)ctx.get_data("rows");
            var gradient = gradOutput.contiguous().clone();
            processes.AllReduce(gradient);
            return [gradient.narrow(0, processes.Rank * rows, rows).contiguous(), null!];
        }
    }
}
