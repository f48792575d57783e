package server

import "github.com/gin-gonic/gin"

// bodyLimits bounds how long a request body may take to arrive, and closes
// connections whose framing is ambiguous. (Being implemented: issue 11 #9/#10.)
func (s *Server) bodyLimits() gin.HandlerFunc {
	return func(c *gin.Context) { c.Next() }
}
