using System.Runtime.InteropServices;

namespace Conic.Distributed;

/// <summary>
/// The few calls of Open MPI's C API that data-parallel training needs, by P/Invoke. Chosen over MPI.NET because that
/// package targets MS-MPI's integer handles; Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM) are addresses
/// of exported objects, read here once with <see cref="NativeLibrary.GetExport"/>. Open MPI 4.x (Debian 12's
/// openmpi-bin) only: MPICH's ABI differs.
/// </summary>
static class OpenMpi
{
    const string Library = "libmpi.so.40";

    public const int ThreadSerialized = 2;
    public const int ThreadMultiple = 3;
    /// <summary>MPI_IN_PLACE in Open MPI.</summary>
    public static readonly IntPtr InPlace = 1;

    static IntPtr _handle;
    public static IntPtr World { get; private set; }
    public static IntPtr Float { get; private set; }
    public static IntPtr Int64 { get; private set; }
    public static IntPtr Byte { get; private set; }
    public static IntPtr Sum { get; private set; }
    public static IntPtr Max { get; private set; }

    /// <summary>
    /// Loads libmpi with its symbols global: Open MPI's components are plug-ins that resolve libmpi's symbols at
    /// load, which .NET's default (local) loading hides from them.
    /// </summary>
    public static void Load()
    {
        if (_handle != IntPtr.Zero) return;
        _handle = dlopen(Library, RtldNow | RtldGlobal);
        if (_handle == IntPtr.Zero)
            throw new ConicException($"{Library}: Open MPI is not installed ({Marshal.PtrToStringUTF8(dlerror())}); install it with 'apt-get install openmpi-bin libopenmpi-dev'");
        IntPtr Export(string name) => NativeLibrary.GetExport(_handle, name);
        World = Export("ompi_mpi_comm_world");
        Float = Export("ompi_mpi_float");
        Int64 = Export("ompi_mpi_int64_t");
        Byte = Export("ompi_mpi_byte");
        Sum = Export("ompi_mpi_op_sum");
        Max = Export("ompi_mpi_op_max");
    }

    const int RtldNow = 0x2, RtldGlobal = 0x100;

    [DllImport("libc", EntryPoint = "dlopen")]
    static extern IntPtr dlopen(string file, int mode);

    [DllImport("libc", EntryPoint = "dlerror")]
    static extern IntPtr dlerror();

    [DllImport(Library)] public static extern int MPI_Init_thread(IntPtr argc, IntPtr argv, int required, out int provided);
    [DllImport(Library)] public static extern int MPI_Initialized(out int flag);
    [DllImport(Library)] public static extern int MPI_Finalize();
    [DllImport(Library)] public static extern int MPI_Abort(IntPtr comm, int code);
    [DllImport(Library)] public static extern int MPI_Comm_rank(IntPtr comm, out int rank);
    [DllImport(Library)] public static extern int MPI_Comm_size(IntPtr comm, out int size);
    [DllImport(Library)] public static extern int MPI_Barrier(IntPtr comm);
    [DllImport(Library)] public static extern int MPI_Ibarrier(IntPtr comm, out IntPtr request);
    /// <summary>Open MPI's MPI_STATUS_IGNORE is a null pointer.</summary>
    [DllImport(Library)] public static extern int MPI_Test(ref IntPtr request, out int flag, IntPtr status);
    [DllImport(Library)] public static extern int MPI_Bcast(IntPtr buffer, int count, IntPtr type, int root, IntPtr comm);
    [DllImport(Library)] public static extern int MPI_Allreduce(IntPtr send, IntPtr receive, int count, IntPtr type, IntPtr op, IntPtr comm);
    [DllImport(Library)] public static extern int MPI_Allgather(IntPtr send, int sendCount, IntPtr sendType, IntPtr receive, int receiveCount, IntPtr receiveType, IntPtr comm);
    [DllImport(Library)] public static extern int MPI_Scatter(IntPtr send, int sendCount, IntPtr sendType, IntPtr receive, int receiveCount, IntPtr receiveType, int root, IntPtr comm);
}
