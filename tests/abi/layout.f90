! The Fortran side of the struct layout check (consumer.sh): the size of every bind(C) type
! of the module and the offset of every field, printed as layout.c prints the C structs'.
program layout
  use, intrinsic :: iso_c_binding
  use dragon
  implicit none
  type(dragon_pool_attr_t), target :: pa
  type(dragon_pool_stats_t), target :: ps
  type(dragon_pool_reclaimed_t), target :: pr
  type(dragon_channel_attr_t), target :: ca
  type(dragon_channel_info_t), target :: ci
  type(dragon_policy_t), target :: po
  type(dragon_process_attr_t), target :: xa
  type(dragon_process_pipes_t), target :: xp
  type(dragon_process_status_t), target :: xs

  call show('dragon_pool_attr_t', c_sizeof(pa))
  call show('dragon_pool_attr_t.runtime_id', offset(c_loc(pa), c_loc(pa%runtime_id)))
  call show('dragon_pool_attr_t.node_id', offset(c_loc(pa), c_loc(pa%node_id)))
  call show('dragon_pool_attr_t.min_block', offset(c_loc(pa), c_loc(pa%min_block)))
  call show('dragon_pool_attr_t.flags', offset(c_loc(pa), c_loc(pa%flags)))
  call show('dragon_pool_stats_t', c_sizeof(ps))
  call show('dragon_pool_stats_t.total_bytes', offset(c_loc(ps), c_loc(ps%total_bytes)))
  call show('dragon_pool_stats_t.free_bytes', offset(c_loc(ps), c_loc(ps%free_bytes)))
  call show('dragon_pool_stats_t.used_bytes', offset(c_loc(ps), c_loc(ps%used_bytes)))
  call show('dragon_pool_stats_t.utilization_pct', offset(c_loc(ps), c_loc(ps%utilization_pct)))
  call show('dragon_pool_stats_t.allocation_count', offset(c_loc(ps), c_loc(ps%allocation_count)))
  call show('dragon_pool_stats_t.largest_free_block', offset(c_loc(ps), c_loc(ps%largest_free_block)))
  call show('dragon_pool_stats_t.min_block', offset(c_loc(ps), c_loc(ps%min_block)))
  call show('dragon_pool_stats_t.cached_bytes', offset(c_loc(ps), c_loc(ps%cached_bytes)))
  call show('dragon_pool_reclaimed_t', c_sizeof(pr))
  call show('dragon_pool_reclaimed_t.blocks', offset(c_loc(pr), c_loc(pr%blocks)))
  call show('dragon_pool_reclaimed_t.bytes', offset(c_loc(pr), c_loc(pr%bytes)))
  call show('dragon_pool_reclaimed_t.waiters', offset(c_loc(pr), c_loc(pr%waiters)))
  call show('dragon_pool_reclaimed_t.cached_blocks', offset(c_loc(pr), c_loc(pr%cached_blocks)))
  call show('dragon_channel_attr_t', c_sizeof(ca))
  call show('dragon_channel_attr_t.wait_mode', offset(c_loc(ca), c_loc(ca%wait_mode)))
  call show('dragon_channel_info_t', c_sizeof(ci))
  call show('dragon_channel_info_t.capacity', offset(c_loc(ci), c_loc(ci%capacity)))
  call show('dragon_channel_info_t.slot_size', offset(c_loc(ci), c_loc(ci%slot_size)))
  call show('dragon_channel_info_t.count', offset(c_loc(ci), c_loc(ci%count)))
  call show('dragon_channel_info_t.blocked_senders', offset(c_loc(ci), c_loc(ci%blocked_senders)))
  call show('dragon_channel_info_t.blocked_receivers', offset(c_loc(ci), c_loc(ci%blocked_receivers)))
  call show('dragon_policy_t', c_sizeof(po))
  call show('dragon_policy_t.placement', offset(c_loc(po), c_loc(po%placement)))
  call show('dragon_policy_t.distribution', offset(c_loc(po), c_loc(po%distribution)))
  call show('dragon_policy_t.host_name', offset(c_loc(po), c_loc(po%host_name)))
  call show('dragon_policy_t.host_id', offset(c_loc(po), c_loc(po%host_id)))
  call show('dragon_policy_t.cpu_count', offset(c_loc(po), c_loc(po%cpu_count)))
  call show('dragon_policy_t.cpus', offset(c_loc(po), c_loc(po%cpus)))
  call show('dragon_policy_t.gpu_count', offset(c_loc(po), c_loc(po%gpu_count)))
  call show('dragon_policy_t.gpus', offset(c_loc(po), c_loc(po%gpus)))
  call show('dragon_policy_t.wait_mode', offset(c_loc(po), c_loc(po%wait_mode)))
  call show('dragon_process_attr_t', c_sizeof(xa))
  call show('dragon_process_attr_t.env', offset(c_loc(xa), c_loc(xa%env)))
  call show('dragon_process_attr_t.cwd', offset(c_loc(xa), c_loc(xa%cwd)))
  call show('dragon_process_attr_t.out_mode', offset(c_loc(xa), c_loc(xa%out_mode)))
  call show('dragon_process_attr_t.err_mode', offset(c_loc(xa), c_loc(xa%err_mode)))
  call show('dragon_process_attr_t.policy', offset(c_loc(xa), c_loc(xa%policy)))
  call show('dragon_process_attr_t.in_mode', offset(c_loc(xa), c_loc(xa%in_mode)))
  call show('dragon_process_attr_t.max_restarts', offset(c_loc(xa), c_loc(xa%max_restarts)))
  call show('dragon_process_attr_t.role', offset(c_loc(xa), c_loc(xa%role)))
  call show('dragon_process_pipes_t', c_sizeof(xp))
  call show('dragon_process_pipes_t.out_fd', offset(c_loc(xp), c_loc(xp%out_fd)))
  call show('dragon_process_pipes_t.err_fd', offset(c_loc(xp), c_loc(xp%err_fd)))
  call show('dragon_process_status_t', c_sizeof(xs))
  call show('dragon_process_status_t.state', offset(c_loc(xs), c_loc(xs%state)))
  call show('dragon_process_status_t.pid', offset(c_loc(xs), c_loc(xs%pid)))
  call show('dragon_process_status_t.exit_code', offset(c_loc(xs), c_loc(xs%exit_code)))
  call show('dragon_process_status_t.restarts', offset(c_loc(xs), c_loc(xs%restarts)))
  call show('dragon_process_status_t.node_id', offset(c_loc(xs), c_loc(xs%node_id)))

contains

  integer(c_size_t) function offset(base, field)
    type(c_ptr), intent(in) :: base, field
    offset = int(transfer(field, 0_c_intptr_t) - transfer(base, 0_c_intptr_t), c_size_t)
  end function

  subroutine show(what, n)
    character(len=*), intent(in) :: what
    integer(c_size_t), intent(in) :: n
    print '(a,1x,i0)', what, n
  end subroutine

end program layout
