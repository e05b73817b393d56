! Built against the installed library with `pkg-config --libs dragon-c` only: the C ABI
! called through ISO_C_BINDING.
program consumer
  use, intrinsic :: iso_c_binding
  implicit none

  interface
    integer(c_int) function dragon_pool_create(name, size, attr, pool) bind(C)
      import :: c_int, c_char, c_size_t, c_ptr
      character(kind=c_char), dimension(*), intent(in) :: name
      integer(c_size_t), value :: size
      type(c_ptr), value :: attr
      type(c_ptr), intent(out) :: pool
    end function
    integer(c_int) function dragon_pool_alloc(pool, size, ptr) bind(C)
      import :: c_int, c_size_t, c_ptr
      type(c_ptr), value :: pool
      integer(c_size_t), value :: size
      type(c_ptr), intent(out) :: ptr
    end function
    integer(c_int) function dragon_pool_free(pool, ptr) bind(C)
      import :: c_int, c_ptr
      type(c_ptr), value :: pool, ptr
    end function
    integer(c_int) function dragon_pool_destroy(pool) bind(C)
      import :: c_int, c_ptr
      type(c_ptr), value :: pool
    end function
  end interface

  type(c_ptr) :: pool, mem
  real(c_double), pointer :: values(:)
  integer :: i, status

  status = dragon_pool_create("consumer-f90" // c_null_char, int(65536, c_size_t), &
                              c_null_ptr, pool)
  if (status /= 0) stop 1
  status = dragon_pool_alloc(pool, int(100 * 8, c_size_t), mem)
  if (status /= 0) stop 2
  call c_f_pointer(mem, values, [100])
  values = [(real(i, c_double), i = 1, 100)]
  if (sum(values) /= 5050.0_c_double) stop 3
  if (dragon_pool_free(pool, mem) /= 0) stop 4
  if (dragon_pool_destroy(pool) /= 0) stop 5
  print '(a)', 'Fortran consumer: ok'
end program consumer
