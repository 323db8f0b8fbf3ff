using System.Diagnostics;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Conic.Distributed;

/// <summary>
/// The ranks started by <c>mpirun</c> (Open MPI), as a <see cref="ProcessGroup"/>. Collectives run on CPU tensors
/// (others are staged through the CPU). A watchdog ends a rank whose collective has waited longer than the timeout —
/// a peer that hangs or was lost without mpirun noticing — with one line on stderr instead of a silent hang; a rank that
/// dies outright is seen by mpirun, which stops the others.
/// </summary>
public sealed class MpiProcessGroup : ProcessGroup
{
    /// <summary>Open MPI sets this in every process it launches.</summary>
    public const string SizeVariable = "OMPI_COMM_WORLD_SIZE";
    /// <summary>Open MPI sets this to the number of its processes on this machine.</summary>
    public const string LocalSizeVariable = "OMPI_COMM_WORLD_LOCAL_SIZE";

    /// <summary>Exit code of a rank the watchdog stops.</summary>
    public const int TimeoutExitCode = 3;

    readonly int _rank, _size;
    readonly TimeSpan _timeout;
    readonly Thread _watchdog;
    readonly object _collective = new();
    long _waitingSince; // Stopwatch ticks when the current collective started; 0 when none is running
    string _waitingFor = "";
    long _communicationTicks;
    volatile bool _disposed;

    MpiProcessGroup(TimeSpan timeout)
    {
        OpenMpi.Load();
        Check(OpenMpi.MPI_Initialized(out int initialized), "MPI_Initialized");
        if (initialized == 0)
        {
            Check(OpenMpi.MPI_Init_thread(IntPtr.Zero, IntPtr.Zero, OpenMpi.ThreadMultiple, out int provided), "MPI_Init_thread");
            // Collectives are serialised by a lock; the watchdog thread never calls MPI.
            if (provided < OpenMpi.ThreadSerialized)
                throw new ConicException($"Open MPI gives thread level {provided}; Conic needs MPI_THREAD_SERIALIZED (2) or more");
        }
        Check(OpenMpi.MPI_Comm_rank(OpenMpi.World, out _rank), "MPI_Comm_rank");
        Check(OpenMpi.MPI_Comm_size(OpenMpi.World, out _size), "MPI_Comm_size");
        _timeout = timeout;
        _watchdog = new Thread(Watch) { IsBackground = true, Name = "mpi-watchdog" };
        _watchdog.Start();
    }

    /// <summary>
    /// Joins the ranks of the mpirun job this process belongs to; a clear error when it was not started by mpirun.
    /// </summary>
    /// <param name="timeout">How long one collective may wait for the other ranks before this rank gives up.</param>
    public static MpiProcessGroup Join(TimeSpan timeout)
    {
        if (Environment.GetEnvironmentVariable(SizeVariable) == null)
            throw new ConicException($"--distributed: this process was not started by mpirun ({SizeVariable} is not set); " +
                                     "run 'mpirun -np N ./conic pretrain --distributed ...' or use --processes N");
        return new MpiProcessGroup(timeout);
    }

    /// <summary>Ranks mpirun started on this machine (they share its cores); 1 outside mpirun.</summary>
    public static int LocalRanks => int.TryParse(Environment.GetEnvironmentVariable(LocalSizeVariable), out int n) && n > 0 ? n : 1;

    /// <summary>
    /// libtorch threads for each rank on this machine: its cores shared out (one rank's OpenMP threads spinning on
    /// another's core costs ~10x).
    /// </summary>
    public static int ThreadsPerRank => Math.Max(1, Environment.ProcessorCount / LocalRanks);

    /// <inheritdoc/>
    public override int Rank => _rank;
    /// <inheritdoc/>
    public override int Size => _size;

    /// <inheritdoc/>
    public override void AllReduce(Tensor values, Reduction reduction = Reduction.Sum)
    {
        var op = reduction == Reduction.Sum ? OpenMpi.Sum : OpenMpi.Max;
        OnCpu(values, host =>
        {
            var (type, count) = TypeAndCount(host, "all-reduce");
            Collective("all-reduce", () => OpenMpi.MPI_Allreduce(OpenMpi.InPlace, DataPointer(host), count, type, op, OpenMpi.World));
        });
    }

    /// <inheritdoc/>
    public override Tensor AllGather(Tensor values)
    {
        using var scope = NewDisposeScope();
        var host = values.cpu().contiguous();
        var (type, count) = TypeAndCount(host, "all-gather");
        var shape = host.shape.ToArray();
        shape[0] *= _size;
        var gathered = empty(shape, host.dtype);
        Collective("all-gather", () => OpenMpi.MPI_Allgather(DataPointer(host), count, type, DataPointer(gathered), count, type, OpenMpi.World));
        return gathered.to(values.device).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override void Broadcast(Tensor values, int root = 0) =>
        OnCpu(values, host =>
        {
            var (type, count) = TypeAndCount(host, "broadcast");
            Collective("broadcast", () => OpenMpi.MPI_Bcast(DataPointer(host), count, type, root, OpenMpi.World));
        });

    /// <inheritdoc/>
    public override Tensor Scatter(Tensor? rows, long[] blockShape, ScalarType type, int root = 0)
    {
        using var scope = NewDisposeScope();
        var block = empty(blockShape, type);
        var (mpiType, count) = TypeAndCount(block, "scatter");
        var source = _rank == root ? rows!.cpu().contiguous() : null;
        if (source is not null && source.numel() != block.numel() * _size)
            throw new ArgumentException($"scatter: {source.numel()} values do not split into {_size} blocks of {block.numel()}");
        Collective("scatter", () => OpenMpi.MPI_Scatter(source is null ? IntPtr.Zero : DataPointer(source), count, mpiType, DataPointer(block), count, mpiType, root, OpenMpi.World));
        return block.MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override double CommunicationSeconds => Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _communicationTicks)).TotalSeconds;

    /// <inheritdoc/>
    public override void Barrier() => Collective("barrier", () => OpenMpi.MPI_Barrier(OpenMpi.World));

    /// <inheritdoc/>
    public override void WaitQuietly() => Collective("barrier", () =>
    {
        int code = OpenMpi.MPI_Ibarrier(OpenMpi.World, out IntPtr request);
        for (int done = 0; code == 0; Thread.Sleep(5))
        {
            code = OpenMpi.MPI_Test(ref request, out done, IntPtr.Zero);
            if (done != 0) break;
        }
        return code;
    });

    /// <summary>Leaves the MPI job (MPI_Finalize).</summary>
    public override void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        OpenMpi.MPI_Finalize();
    }

    /// <summary>Ends this rank at once (no finalize), so that mpirun stops the others.</summary>
    static void AbortJob(string message, int exitCode)
    {
        Console.Error.WriteLine(message);
        Console.Error.Flush();
        _exit(exitCode);
    }

    [DllImport("libc")]
    static extern void _exit(int status);

    void Collective(string name, Func<int> call)
    {
        lock (_collective)
        {
            _waitingFor = name;
            Interlocked.Exchange(ref _waitingSince, Stopwatch.GetTimestamp());
            try
            {
                Check(call(), name);
            }
            finally
            {
                long started = Interlocked.Exchange(ref _waitingSince, 0);
                Interlocked.Add(ref _communicationTicks, Stopwatch.GetTimestamp() - started);
            }
        }
    }

    void Watch()
    {
        while (!_disposed)
        {
            Thread.Sleep(TimeSpan.FromMilliseconds(Math.Clamp(_timeout.TotalMilliseconds / 10, 10, 1000)));
            long since = Interlocked.Read(ref _waitingSince);
            if (since != 0 && Stopwatch.GetElapsedTime(since) > _timeout)
                AbortJob($"error: rank {_rank}: waited {_timeout.TotalSeconds:G4} s in an MPI {_waitingFor} for the other ranks (--rank-timeout); " +
                         "a rank has died or hung: stopping", TimeoutExitCode);
        }
    }

    static void OnCpu(Tensor values, Action<Tensor> action)
    {
        if (values.device_type == TorchSharp.DeviceType.CPU && values.is_contiguous())
        {
            action(values);
            return;
        }
        using var host = values.cpu().contiguous();
        action(host);
        values.copy_(host);
    }

    static (IntPtr Type, int Count) TypeAndCount(Tensor values, string what)
    {
        var type = values.dtype switch
        {
            ScalarType.Float32 => OpenMpi.Float,
            ScalarType.Int64 => OpenMpi.Int64,
            ScalarType.Byte => OpenMpi.Byte,
            _ => throw new ArgumentException($"{what}: tensors of {values.dtype} are not supported"),
        };
        if (values.numel() > int.MaxValue) throw new ArgumentException($"{what}: {values.numel()} values are more than one MPI call carries");
        return (type, (int)values.numel());
    }

    static IntPtr DataPointer(Tensor values)
    {
        long elementSize = values.element_size();
        IntPtr start = values.dtype switch
        {
            ScalarType.Float32 => values.storage<float>().data_ptr(),
            ScalarType.Int64 => values.storage<long>().data_ptr(),
            ScalarType.Byte => values.storage<byte>().data_ptr(),
            _ => throw new ArgumentException($"tensors of {values.dtype} are not supported"),
        };
        return start + (nint)(values.storage_offset() * elementSize);
    }

    static void Check(int code, string call)
    {
        if (code != 0) throw new ConicException($"MPI: {call} failed with error code {code}");
    }
}
